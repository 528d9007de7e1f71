"""DRN's offline start from the command line, on the real broker: a logging policy with exploration
(`simulate --policy popular --explore`), the major update trained on its log from scratch (`major-update
--from --to` publishes MAJOR v1), and the DRN ranker serving that version (`simulate --policy drn`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from schemas import serde
from schemas.topics import TopicNames

pytestmark = pytest.mark.integration


def drnflow(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "drnflow", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def decoded(bootstrap: str, topic: str, schema: str) -> list[dict[str, object]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=4000, isolation_level="read_committed")
    out = [serde.decode(schema, m.value) for m in consumer]
    consumer.close()
    return out


def test_logging_policy_then_major_update_then_drn_serves_it(kafka_bootstrap: str, topic_names: TopicNames,
                                                             tmp_path: Path) -> None:
    common = ["--bootstrap", kafka_bootstrap, "--topic-prefix", topic_names.prefix, "--seed", "3",
              "--click-model", "pbm", "--arrivals", "poisson", "--rate", "1", "--no-progress"]
    bad = subprocess.run([sys.executable, "-m", "drnflow", "simulate", *common, "--policy", "random",
                          "--explore", "0.3"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--explore" in bad.stderr and "Traceback" not in bad.stderr
    drnflow("simulate", *common, "--policy", "popular", "--explore", "0.3", "--impressions", "1500")
    logged = decoded(kafka_bootstrap, topic_names.impressions, "Impression")
    assert len(logged) == 1500 and {i["model_id"] for i in logged} == {"drn"}
    first = [str(s["item_id"]) for s in logged[0]["slots"]]
    orders = {tuple(str(s["item_id"]) for s in i["slots"]) == tuple(first) for i in logged}
    assert orders == {True, False}, "some requests are shown in another order than the others"
    end = max(int(i["event_time"]) for i in logged) + 3_600_000
    out = drnflow("major-update", "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_names.prefix,
                  "--from", "0", "--to", str(end), "--model-id", "drn", "--steps", "300", "--no-baselines",
                  "--device", "cpu", "--runs-dir", str(tmp_path / "runs"), "--no-progress")
    weights = decoded(kafka_bootstrap, topic_names.model_weights, "ModelWeights")
    assert [(w["version"], w["kind"], w["parent_version"]) for w in weights] == [(1, "MAJOR", None)], out.stdout
    drnflow("simulate", *common, "--policy", "drn", "--impressions", "50", "--continue")
    served = decoded(kafka_bootstrap, topic_names.impressions, "Impression")[1500:]
    assert len(served) == 50 and {int(i["model_version"]) for i in served} == {1}
