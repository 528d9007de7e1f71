"""The ranker's WeightsFollower picks up a new ModelWeights version from real Kafka quickly."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from kafka import KafkaProducer

from models.weights import ParamSpec, make_model_weights_record
from operators.weights_follower import WeightsFollower
from schemas import serde
from schemas.topics import TopicNames

pytestmark = pytest.mark.integration

LAYOUT = [ParamSpec("w", (4,))]


def record(version: int, model_id: str = "drn") -> bytes:
    flat = np.full(4, float(version), dtype=np.float32)
    rec = make_model_weights_record(model_id=model_id, version=version, parent_version=version - 1 or None,
                                    kind="MAJOR" if version == 1 else "MINOR", flat=flat, layout=LAYOUT,
                                    created_at=version * 1000, explore_seeds=[])
    return serde.encode("ModelWeights", rec)


def test_new_version_arrives_within_a_second_or_so(kafka_bootstrap: str, topic_names: TopicNames) -> None:
    seen: list[tuple[int, float]] = []
    got = threading.Event()

    def on_weights(rec: dict[str, object]) -> bool:
        seen.append((int(rec["version"]), time.monotonic()))  # type: ignore[call-overload]
        got.set()
        return True

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic_names.model_weights, record(1), key=b"drn")
    producer.send(topic_names.model_weights, record(1, "other-model"), key=b"other-model")
    producer.flush()
    follower = WeightsFollower.for_kafka(kafka_bootstrap, on_weights, topic=topic_names.model_weights,
                                         model_ids=["drn"]).start()
    try:
        assert got.wait(30), "the follower never handed the first version"
        assert [v for v, _ in seen] == [1]
        got.clear()
        sent = time.monotonic()
        producer.send(topic_names.model_weights, record(2), key=b"drn")
        producer.flush()
        assert got.wait(10)
        version, at = seen[-1]
        assert version == 2
        # design: the ranker picks up a new version within 1 s; allow slack for a loaded 2-core CI box.
        assert at - sent < 3.0, f"took {at - sent:.2f} s"
    finally:
        follower.stop()
        producer.close()
    assert all(v in (1, 2) for v, _ in seen)
