"""Principals and ACLs of a secured broker (`drnflow up --secure`, design.md §10): who reads and writes what.

Five SCRAM-SHA-512 users, each with a client properties file under `<state>/kafka/credentials/`:

- `admin`: the broker's super user; creates topics and grants these ACLs.
- `job`: the minor-update job. Reads impressions, clicks, model-weights; writes win-rates,
  dead-letters, major-update-triggers and its MINORs to model-weights, in transactions.
- `major`: the major update and `drnflow model init/rollback`. Reads everything the learner logs;
  writes MAJOR/ROLLBACK records to model-weights.
- `ranker`: the serving side and the simulator. Reads model-weights; writes impressions and clicks.
- `monitor`: read-only tools (monitor, topics, export). Reads every topic, writes none.

Kafka's ACLs are per topic, not per record: both `job` and `major` may write model-weights, and
which kinds each writes (MINOR vs MAJOR/ROLLBACK) is the programs' rule, not the broker's.
Consumer groups and transactional ids are granted by wildcard to the principals that use them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.kafka_io import clients
from operators.kafka_io.security import KafkaSecurity, write_client_config
from schemas.topics import TopicNames

ADMIN = "admin"
PRINCIPALS = (ADMIN, "job", "major", "ranker", "monitor")
MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: `principal` may `operation` the `resource` called `name` (LITERAL pattern)."""

    principal: str
    operation: str  # READ, WRITE
    resource: str  # TOPIC, GROUP, TRANSACTIONAL_ID
    name: str


def grants(names: TopicNames) -> list[Grant]:
    """The ACLs of one deployment (one topic prefix). READ and WRITE imply DESCRIBE."""
    reads = {
        "job": [names.impressions, names.clicks, names.model_weights],
        "major": [names.impressions, names.clicks, names.model_weights, names.major_update_triggers,
                  names.win_rates],
        "ranker": [names.model_weights],
        "monitor": names.all(),
    }
    writes = {
        "job": [names.win_rates, names.dead_letters, names.major_update_triggers, names.model_weights],
        "major": [names.model_weights],
        "ranker": [names.impressions, names.clicks],
    }
    out = [Grant(p, "READ", "TOPIC", t) for p, topics in reads.items() for t in topics]
    out += [Grant(p, "WRITE", "TOPIC", t) for p, topics in writes.items() for t in topics]
    out += [Grant(p, "READ", "GROUP", "*") for p in ("job", "major", "ranker", "monitor")]
    out += [Grant(p, "WRITE", "TRANSACTIONAL_ID", "*") for p in ("job", "major")]
    return out


def credentials_dir(kafka_home: Path) -> Path:
    return kafka_home / "credentials"


def credentials_file(kafka_home: Path, principal: str) -> Path:
    """The client properties file of `principal` (for DRNFLOW_KAFKA_CONFIG)."""
    return credentials_dir(kafka_home) / f"{principal}.properties"


def ensure_credentials(kafka_home: Path) -> dict[str, KafkaSecurity]:
    """Each principal's identity, generating a random password the first time (files mode 0600)."""
    from operators.kafka_io.security import read_client_config

    out: dict[str, KafkaSecurity] = {}
    for principal in PRINCIPALS:
        path = credentials_file(kafka_home, principal)
        if path.exists():
            out[principal] = read_client_config(path)
            continue
        identity = KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism=MECHANISM, username=principal,
                                 password=secrets.token_urlsafe(24))
        write_client_config(path, identity)
        out[principal] = identity
    return out


def apply_grants(bootstrap: str, admin_identity: KafkaSecurity, names: TopicNames) -> int:
    """Create the ACLs of `names` as the admin user; returns how many were asked for (idempotent)."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    wanted = grants(names)
    acls: list[Any] = [
        ACL(principal=f"User:{g.principal}", host="*", operation=ACLOperation[g.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(ResourceType[g.resource], g.name, ACLResourcePatternType.LITERAL))
        for g in wanted
    ]
    admin = clients.admin(bootstrap, "drnflow-acls", **admin_identity.kafka_python())
    try:
        result = admin.create_acls(acls)
        failed = result.get("failed", [])
        if failed:
            acl, error = failed[0]
            raise clients.KafkaIOError(f"the broker refused {len(failed)} ACL(s), e.g. {acl}: {error}")
    finally:
        admin.close()
    return len(wanted)
