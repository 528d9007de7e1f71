"""`drnflow simulate` writes decodable Avro impressions and clicks with event-time timestamps to real Kafka."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from schemas import serde
from schemas.topics import TopicNames

pytestmark = pytest.mark.integration


def consume(bootstrap: str, topic: str) -> list[tuple[bytes, bytes, int]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=4000)
    out = [(m.key, m.value, m.timestamp) for m in consumer]
    consumer.close()
    return out


def test_simulate_to_kafka_with_truth(kafka_bootstrap: str, topic_names: TopicNames, tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.csv"
    result = subprocess.run(
        [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", kafka_bootstrap, "--topic-prefix",
         topic_names.prefix, "--impressions", "150", "--seed", "3", "--click-model", "perfect",
         "--policy", "popular", "--as-fast-as-possible", "--truth-out", str(truth_path), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    impressions = {}
    for key, value, ts in consume(kafka_bootstrap, topic_names.impressions):
        rec = serde.decode("Impression", value)
        assert key == rec["request_id"].encode() and ts == rec["event_time"]
        assert len(rec["slots"]) == 10 and [s["position"] for s in rec["slots"]] == list(range(10))
        assert len(rec["state_features"]) > 0 and all(len(s["features"]) > 0 for s in rec["slots"])
        impressions[rec["request_id"]] = rec
    assert len(impressions) == 150

    with truth_path.open() as f:
        truth = {(r["request_id"], r["item_id"]): int(r["grade"]) for r in csv.DictReader(f)}
    assert len(truth) == 1500

    clicks = [serde.decode("Click", v) for _, v, _ in consume(kafka_bootstrap, topic_names.clicks)]
    assert clicks, "a popularity ranking under the perfect click model gets clicks"
    for click in clicks:
        imp = impressions[click["request_id"]]
        assert click["item_id"] in {s["item_id"] for s in imp["slots"]}
        assert imp["event_time"] < click["event_time"] <= imp["event_time"] + 30 * 60_000
        # The perfect click model never clicks a grade-0 item.
        assert truth[(click["request_id"], click["item_id"])] > 0
    assert f"{len(clicks)} clicks" in result.stdout


def test_simulate_unreachable_broker_is_one_sentence() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", "127.0.0.1:1", "--impressions", "5",
         "--policy", "random", "--no-progress"], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Kafka" in result.stderr
