"""Every Kafka client drnflow opens, built here: one place for the settings that must agree.

Every client authenticates as this process's identity (operators/kafka_io/security.py: a client properties
file or environment variables, never the command line); explicit settings win over it.
Readers see committed records only (`read_committed`: the jobs write transactionally) and fetch in
large batches (model-weights records are megabytes); writers wait for all in-sync replicas
(`acks=all`). Callers name themselves with `client_id`, which is what a broker's logs show.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from operators.kafka_io.security import from_environment

#: Fetch limits large enough for one ModelWeights record of a big network.
MAX_FETCH_BYTES = 64 * 1024 * 1024
MAX_PARTITION_FETCH_BYTES = 16 * 1024 * 1024


class KafkaIOError(ValueError):
    """A Kafka read or write that cannot go on (no broker, no topic, a stalled range): one sentence.
    A ValueError, as bad input is: callers that refuse bad arguments refuse these the same way."""

    code = 1


def port_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts a TCP connection at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def consumer(bootstrap: str, client_id: str, *topics: str, **settings: Any) -> Any:
    """A kafka-python KafkaConsumer of committed records, without a group unless `group_id` is given
    (then offsets are committed by the caller, never automatically)."""
    from kafka import KafkaConsumer

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "max_partition_fetch_bytes": MAX_PARTITION_FETCH_BYTES,
        "fetch_max_bytes": MAX_FETCH_BYTES,
        **from_environment().kafka_python(),
    }
    options.update(settings)
    return KafkaConsumer(*topics, **options)


def producer(bootstrap: str, client_id: str, **settings: Any) -> Any:
    """A kafka-python KafkaProducer that waits for all in-sync replicas."""
    from kafka import KafkaProducer

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 20,
        "max_request_size": MAX_FETCH_BYTES,
        **from_environment().kafka_python(),
    }
    options.update(settings)
    return KafkaProducer(**options)


def admin(bootstrap: str, client_id: str, **settings: Any) -> Any:
    """A kafka-python KafkaAdminClient."""
    from kafka import KafkaAdminClient

    options: dict[str, Any] = {"bootstrap_servers": bootstrap, "client_id": client_id,
                               **from_environment().kafka_python()}
    options.update(settings)
    return KafkaAdminClient(**options)


#: librdkafka writes its own log lines (`%4|...|GETPID|...` while an idempotent producer starts) straight
#: to stderr; routed through this logger they follow the program's logging, and only errors show by default.
LIBRDKAFKA_LOG = logging.getLogger("drnflow.librdkafka")
if LIBRDKAFKA_LOG.level == logging.NOTSET:
    LIBRDKAFKA_LOG.setLevel(logging.ERROR)


def confluent_consumer(bootstrap: str, client_id: str, group_id: str, **settings: Any) -> Any:
    """A confluent-kafka Consumer of committed records (librdkafka needs a group id even to assign)."""
    from confluent_kafka import Consumer

    options: dict[str, Any] = {
        "bootstrap.servers": bootstrap, "group.id": group_id, "client.id": client_id,
        "enable.auto.commit": False, "isolation.level": "read_committed",
        "fetch.max.bytes": MAX_FETCH_BYTES, **from_environment().librdkafka(),
    }
    options.update(settings)
    return Consumer(options, logger=LIBRDKAFKA_LOG)


def confluent_producer(bootstrap: str, client_id: str, **settings: Any) -> Any:
    """A confluent-kafka idempotent Producer that waits for all in-sync replicas."""
    from confluent_kafka import Producer

    options: dict[str, Any] = {
        "bootstrap.servers": bootstrap, "client.id": client_id, "enable.idempotence": True, "acks": "all",
        "linger.ms": 20, **from_environment().librdkafka(),
    }
    options.update(settings)
    return Producer(options, logger=LIBRDKAFKA_LOG)
