"""`drnflow up --secure`: SASL/SCRAM principals and ACLs on the real broker (issue 11, security).

A client without credentials, with a wrong password, or as a principal without the right ACL is refused
by the broker, while the minor-update job, authenticating as `job` from a credentials file named by
DRNFLOW_KAFKA_CONFIG, reads its inputs and commits its outputs.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drnflow.cli import main
from drnflow.stack import process
from drnflow.stack.access import PRINCIPALS, credentials_file
from operators import kafka_io
from operators.kafka_io.security import CONFIG_ENV, PASSWORD_ENV, USERNAME_ENV
from operators.paths import PROJECT_ROOT
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    ATTRIBUTION_MS,
    OOO_MS,
    WINDOW_MS,
    hand_written_stream,
    initial_major,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def secure_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Path, str, TopicNames, str]]:
    """`drnflow up --secure` on free ports; `drnflow down` after."""
    state = tmp_path / "state"
    port = process.free_port()
    where = ["--state-dir", str(state), "--kafka-port", str(port), "--controller-port", str(process.free_port())]
    names = TopicNames(f"sec{uuid.uuid4().hex[:6]}.")
    code = main(["up", "--secure", *where, "--topic-prefix", names.prefix])
    out = capsys.readouterr().out
    try:
        assert code == 0, out
        yield state / "kafka", f"127.0.0.1:{port}", names, out
    finally:
        main(["down", *where])


def as_principal(monkeypatch: pytest.MonkeyPatch, home: Path, principal: str) -> None:
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setenv(CONFIG_ENV, str(credentials_file(home, principal)))


def send(bootstrap: str, topic: str, value: bytes) -> None:
    """One record, waiting for the broker's answer (raises what it refused with)."""
    producer = kafka_io.producer(bootstrap, "drnflow-test-secure", max_block_ms=10_000, retries=0)
    try:
        producer.send(topic, key=b"k", value=value).get(timeout=20)
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list[Any]:
    from kafka import TopicPartition

    consumer = kafka_io.consumer(bootstrap, "drnflow-test-secure", consumer_timeout_ms=3000)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        return list(consumer)
    finally:
        consumer.close()


def test_up_secure_refuses_wrong_principals_and_the_job_runs_as_its_own(
        secure_stack: tuple[Path, str, TopicNames, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kafka.errors import KafkaError, TopicAuthorizationFailedError

    from jobs.minor_update_config import MinorUpdateConfig

    home, bootstrap, names, out = secure_stack
    assert "SASL/SCRAM-SHA-512" in out and f"DRNFLOW_KAFKA_CONFIG={credentials_file(home, 'job')}" in out
    for principal in PRINCIPALS:
        assert stat.S_IMODE(credentials_file(home, principal).stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "server.properties").stat().st_mode) == 0o600

    # No credentials, or a wrong password: the broker does not serve the client at all.
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises((KafkaError, OSError)):
        send(bootstrap, names.impressions, b"anonymous")
    monkeypatch.setenv(USERNAME_ENV, "ranker")
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises((KafkaError, OSError)):
        send(bootstrap, names.impressions, b"wrong password")

    # The right principals set the job up: major publishes the model, ranker the traffic.
    cfg = MinorUpdateConfig(seed=11, initial_state_dim=4, initial_action_dim=3)
    as_principal(monkeypatch, home, "major")
    send(bootstrap, names.model_weights, serde.encode("ModelWeights", initial_major(cfg, "m1", 1, 1)))
    as_principal(monkeypatch, home, "ranker")
    stream = hand_written_stream(n_windows=3, seed=5)
    producer = kafka_io.producer(bootstrap, "drnflow-test-ranker")
    futures = [producer.send(names.impressions, key=r["request_id"].encode(), value=serde.encode("Impression", r))
               for r in stream.impressions]
    futures += [producer.send(names.clicks, key=r["request_id"].encode(), value=serde.encode("Click", r))
                for r in stream.clicks]
    producer.flush()
    for f in futures:
        f.get(timeout=20)
    producer.close()

    env = {**os.environ, CONFIG_ENV: str(credentials_file(home, "job"))}
    env.pop(USERNAME_ENV, None)
    env.pop(PASSWORD_ENV, None)
    log = tmp_path / "job.log"
    with log.open("w") as log_file:
        job = subprocess.Popen(
            [sys.executable, "-m", "jobs.minor_update", "--bootstrap", bootstrap, "--topic-prefix", names.prefix,
             "--bounded", "--window", f"{WINDOW_MS} ms", "--attribution-window", f"{ATTRIBUTION_MS} ms",
             "--out-of-orderness", f"{OOO_MS} ms", "--seed", "11", "--checkpoint-interval", "500 ms",
             "--checkpoint-dir", str(tmp_path / "ckpt")],
            cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
        try:
            # While the job runs: the ranker may not write what only the job writes, the monitor writes nothing.
            with pytest.raises(TopicAuthorizationFailedError):
                send(bootstrap, names.win_rates, b"forged")
            as_principal(monkeypatch, home, "monitor")
            with pytest.raises(TopicAuthorizationFailedError):
                send(bootstrap, names.impressions, b"monitor")
            code = job.wait(timeout=300)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    assert code == 0, log.read_text()[-3000:]

    rows = [serde.decode("WinRate", r.value) for r in read_all(bootstrap, names.win_rates)]
    assert len([r for r in rows if r["model_id"] == "m1"]) >= 3, rows
    minors = [w for w in (serde.decode("ModelWeights", r.value) for r in read_all(bootstrap, names.model_weights))
              if w["kind"] == "MINOR"]
    assert minors, "the job, as `job`, wrote no MINOR to model-weights"
    assert all(not r.value.startswith(b"forged") for r in read_all(bootstrap, names.win_rates))
