"""Shared test fixtures: one real Kafka broker per test session, a fresh topic prefix per test."""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from drnflow.stack import process
from drnflow.stack.kafka import KafkaBroker, KafkaConfig, create_topics
from schemas.topics import TopicNames

# Property tests explore a fixed sequence of examples: CI must not pass or fail by luck. Run with
# `--hypothesis-profile explore` to search new examples locally.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (CI timeout, `kill`) would end pytest without teardown and leave the broker running;
# as a KeyboardInterrupt it unwinds through the fixtures' finalizers, which stop what they started.
signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


@pytest.fixture(scope="session")
def stack_state_dir() -> Iterator[Path]:
    """A private state dir for everything the test session starts (removed nowhere: logs help)."""
    base = Path(os.environ.get("DRNFLOW_TEST_STATE", tempfile.mkdtemp(prefix="drnflow-test-")))
    base.mkdir(parents=True, exist_ok=True)
    yield base


@pytest.fixture(scope="session")
def kafka_broker(stack_state_dir: Path) -> Iterator[KafkaBroker]:
    """The session's broker, on free loopback ports; stopped at the end of the session."""
    config = KafkaConfig(
        state_dir=stack_state_dir,
        port=process.free_port(),
        controller_port=process.free_port(),
    )
    broker = KafkaBroker(config)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.config.bootstrap


@pytest.fixture
def topic_names(kafka_bootstrap: str) -> TopicNames:
    """A fresh prefix per test with the six topics of design.md §2 created."""
    names = TopicNames(prefix=f"t{uuid.uuid4().hex[:10]}.")
    create_topics(kafka_bootstrap, names)
    return names
