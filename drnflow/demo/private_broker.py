"""A private broker for one demo run (or one benchmark): its own state dir and free loopback ports, always stopped."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from drnflow.stack import process
from drnflow.stack.kafka import KafkaBroker, KafkaConfig, create_topics
from schemas.topics import TopicNames


@contextmanager
def demo_broker(state: Path, names: TopicNames) -> Iterator[str]:
    """Start a fresh broker under `state` (wiped first), create the topics, yield the bootstrap."""
    if state.exists():
        KafkaBroker(KafkaConfig(state_dir=state)).stop()
        shutil.rmtree(state)
    config = KafkaConfig(state_dir=state, port=process.free_port(), controller_port=process.free_port())
    broker = KafkaBroker(config)
    t0 = time.monotonic()
    print(f"[demo] starting Kafka (KRaft) in {state} ...", flush=True)
    broker.start()
    print(f"[demo] Kafka ready on {config.bootstrap} in {time.monotonic() - t0:.1f} s", flush=True)
    create_topics(config.bootstrap, names)
    try:
        yield config.bootstrap
    finally:
        stopped = broker.stop()
        print(f"[demo] stopped Kafka (pid {', '.join(map(str, stopped)) or 'none'})", flush=True)


def start_private_broker(tag: str) -> KafkaBroker:
    """A started broker on free loopback ports with a fresh temporary state dir named for `tag`, for a benchmark
    that brings its own Kafka; the caller stops it."""
    broker = KafkaBroker(KafkaConfig(state_dir=Path(tempfile.mkdtemp(prefix=f"drnflow-{tag}-")),
                                     port=process.free_port(), controller_port=process.free_port()))
    broker.start()
    return broker
