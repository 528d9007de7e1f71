"""Avro written by kafka-python + fastavro is read by a PyFlink Kafka-source job; its output is read back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer

from schemas import serde
from schemas.topics import TopicNames

pytestmark = pytest.mark.integration

MINUTE = 60_000
BASE = 1_700_000_040_000  # a window boundary


def test_window_counts_of_avro_records(kafka_bootstrap: str, topic_names: TopicNames) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    # 3 impressions + 2 clicks in the first minute, 1 + 1 in the second.
    for i, offset in enumerate([0, 10_000, 59_999, MINUTE + 1]):
        t = BASE + offset
        impression = {
            "request_id": f"r{i}", "user_id": "u1", "event_time": t, "model_id": "drn", "model_version": 1,
            "explore_seed": 7, "slots": [{"item_id": "a", "position": 0, "team": "EXPLORE"}],
        }
        producer.send(topic_names.impressions, serde.encode("Impression", impression), key=f"r{i}".encode(),
                      timestamp_ms=t)
    for i, t in [(0, BASE + 5_000), (1, BASE + 30_000), (3, BASE + MINUTE + 2_000)]:
        click = {"request_id": f"r{i}", "item_id": "a", "event_time": t}
        producer.send(topic_names.clicks, serde.encode("Click", click), key=f"r{i}".encode(), timestamp_ms=t)
    producer.flush()
    producer.close()

    job = subprocess.run(
        [sys.executable, "-m", "jobs.window_count", "--bootstrap", kafka_bootstrap,
         "--topic-prefix", topic_names.prefix, "--window", "60s", "--bounded"],
        capture_output=True, text=True, timeout=400,
    )
    assert job.returncode == 0, job.stderr[-3000:]

    consumer = KafkaConsumer(f"{topic_names.prefix}window-counts", bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    rows = sorted((r["topic"], r["window_start"], r["window_end"], r["records"])
                  for r in (json.loads(m.value) for m in consumer))
    consumer.close()
    assert rows == [
        (topic_names.clicks, BASE, BASE + MINUTE, 2),
        (topic_names.clicks, BASE + MINUTE, BASE + 2 * MINUTE, 1),
        (topic_names.impressions, BASE, BASE + MINUTE, 3),
        (topic_names.impressions, BASE + MINUTE, BASE + 2 * MINUTE, 1),
    ]
