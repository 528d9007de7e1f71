"""The simulator's records on Kafka are the bytes the kafka-python + fastavro writer wrote (issue 15 item 3):
the same seed through `EventWriter` (librdkafka, the hand-written Impression encoder, `Candidates`) and
through the writer it replaced (kafka-python's producer, `serde.encode`, candidates as a list of pairs)
give the same (partition, offset, key, value, timestamp) in every partition of both topics, on topics of
several partitions (librdkafka's murmur2_random must choose kafka-python's partition for every key)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from drnflow import datasets
from drnflow.stack.kafka import TopicSettings, create_topics
from models.simulator import Simulator, SimulatorConfig
from models.simulator.drift import DriftConfig
from models.simulator.policies import ExploringPolicy, OraclePolicy, PopularPolicy, RandomPolicy
from models.simulator.stream import event_time_order
from operators import kafka_io
from operators.sim_producer import EventWriter, produce_steps
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import read_committed

pytestmark = pytest.mark.integration

PARTITIONS = 3


class AsPairs:
    """A policy given its candidates as the list of (item_id, features) pairs the simulator built before."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def rank(self, request_id: str, user_id: str, event_time: int, state: Any, candidates: Any, k: int) -> Any:
        return self.base.rank(request_id, user_id, event_time, state, list(candidates), k)


def old_writer(bootstrap: str, topics: TopicNames, steps: Iterable[Any]) -> None:
    """What operators/sim_producer.py did before: kafka-python's producer, fastavro's bytes."""
    producer = kafka_io.producer(bootstrap, "drnflow-simulate")
    errors: list[Exception] = []
    for kind, record in event_time_order(steps):
        topic, schema = (topics.impressions, "Impression") if kind == "impression" else (topics.clicks, "Click")
        producer.send(topic, key=str(record["request_id"]).encode(), value=serde.encode(schema, record, check=False),
                      timestamp_ms=int(record["event_time"])).add_errback(errors.append)
    producer.flush(timeout=60)
    producer.close(timeout=10)
    assert not errors, errors


def records(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, bytes, int, int]]:
    return [(r.partition, r.offset, r.key, r.value, r.timestamp, r.timestamp_type)
            for r in read_committed(bootstrap, topic)]


def _policies(world: Any) -> dict[str, Any]:
    users = {u: i for i, u in enumerate(world.ml.user_ids)}
    return {
        "random": lambda: RandomPolicy("random", seed=0),
        "popular-explore": lambda: ExploringPolicy(PopularPolicy("popular"), 0.3, model_id="drn", seed=4),
        "oracle": lambda: OraclePolicy(world.grades, users, world.item_index, "oracle"),
    }


@pytest.mark.parametrize("policy", ["random", "popular-explore", "oracle"])
def test_event_writer_writes_the_old_writers_records(kafka_bootstrap: str, policy: str) -> None:
    world = datasets.world()
    make = _policies(world)[policy]
    cfg = SimulatorConfig(seed=7, click_model="perfect",
                          drift=DriftConfig(kind="news", seed=7) if policy == "oracle" else DriftConfig())
    names = {side: TopicNames(prefix=f"b{uuid.uuid4().hex[:8]}{side}.") for side in ("old", "new")}
    for topics in names.values():
        create_topics(kafka_bootstrap, topics, TopicSettings(partitions=PARTITIONS))

    n = 400
    old_policy, new_policy = make(), make()
    old_sim = Simulator(world, AsPairs(old_policy), cfg)
    new_sim = Simulator(world, new_policy, cfg)
    if policy == "oracle":  # as `drnflow simulate` does: the oracle ranks by the drifting world's grades
        old_policy.drift, new_policy.drift = old_sim.drift, new_sim.drift
    old_steps, new_steps = list(old_sim.run(n)), list(new_sim.run(n))
    assert [s.truth for s in old_steps] == [s.truth for s in new_steps]
    old_writer(kafka_bootstrap, names["old"], old_steps)
    writer = EventWriter(kafka_bootstrap, names["new"])
    produce_steps(new_steps, writer)
    writer.close()

    for topic in ("impressions", "clicks"):
        old = records(kafka_bootstrap, getattr(names["old"], topic))
        new = records(kafka_bootstrap, getattr(names["new"], topic))
        assert len(old) == len(new) > 0 and new == old, topic
        assert len({p for p, *_ in new}) == PARTITIONS, "every partition got records"
    assert writer.counts["impression"] == n
