"""Issue 17, items 1-2: GE from the pipeline's own log on the real stack. DRN traffic (`simulate --policy
drn`) -> `ge train-evaluator --from-topics` -> `ge train-generator` -> `ge publish` (a MAJOR of "ge" behind
the gate) -> `simulate --reranker` serves the trained generator -> the minor-update Flink job decides its
rows. On the simulator's truth the served generator beats DRN's own top-N order on the same requests.
Bad input (an empty range, a corrupt checkpoint, a failing gate) gets one sentence and publishes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import read_committed

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RANGE = ["--from", "2024-01-01T00:00:00Z", "--to", "2024-01-02T00:00:00Z"]


def _drnflow(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "drnflow", *args], capture_output=True, text=True, timeout=900)
    if ok:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def _weights(bootstrap: str, names: TopicNames) -> list[dict[str, Any]]:
    return [serde.decode("ModelWeights", r.value) for r in read_committed(bootstrap, names.model_weights)]


def test_ge_trained_on_the_log_is_published_served_tuned_and_beats_drns_order(
        kafka_bootstrap: str, topic_names: TopicNames, tmp_path: Path) -> None:
    where = ["--bootstrap", kafka_bootstrap, "--prefix", topic_names.prefix]
    ge_dir = str(tmp_path / "ge")
    traffic = ["--arrivals", "poisson", "--rate", "5", "--click-model", "pbm", "--no-progress"]
    _drnflow("simulate", "--policy", "drn", "--publish-initial", "--impressions", "3000", "--seed", "0", *traffic,
             *where)
    empty = _drnflow("ge", "train-evaluator", "--from-topics", "--from", "2030-01-01T00:00Z", "--to",
                     "2030-01-02T00:00Z", "--dir", ge_dir, *where, ok=False)
    assert empty.returncode != 0 and "no logged impression" in empty.stderr and "Traceback" not in empty.stderr

    trained = _drnflow("ge", "train-evaluator", "--from-topics", *RANGE, "--dir", ge_dir, "--epochs", "4", *where)
    assert "held-out AUC" in trained.stdout
    _drnflow("ge", "train-generator", "--dir", ge_dir, "--steps", "300", "--w-distinct-shops", "0",
             "--w-no-adjacent-shop", "0", "--w-type-share", "0", "--seed", "1")
    refused = _drnflow("ge", "publish", "--dir", ge_dir, "--min-better", "1.01", ok=False)
    assert refused.returncode == 3 and "not published" in refused.stdout
    assert not [w for w in _weights(kafka_bootstrap, topic_names) if w["model_id"] == "ge"]
    published = _drnflow("ge", "publish", "--dir", ge_dir)
    (record,) = [w for w in _weights(kafka_bootstrap, topic_names) if w["model_id"] == "ge"]
    assert record["kind"] == "MAJOR" and f"published generator 'ge' v{record['version']}" in published.stdout

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "evaluator.pt").write_bytes(b"not a checkpoint")
    (corrupt / "generator.pt").write_bytes(b"nor this")
    bad = _drnflow("ge", "publish", "--dir", str(corrupt), ok=False)
    assert bad.returncode != 0 and "nothing published" in bad.stderr and "Traceback" not in bad.stderr

    before = len(read_committed(kafka_bootstrap, topic_names.impressions))
    _drnflow("simulate", "--policy", "drn", "--reranker", "--top-m", "10", "--continue", "--impressions", "300",
             "--seed", "5", "--round", "60 s", *traffic, *where)
    served = [serde.decode("Impression", r.value)
              for r in read_committed(kafka_bootstrap, topic_names.impressions)][before:]
    assert len(served) == 300 and {(i["model_id"], i["model_version"]) for i in served} == {("ge", record["version"])}
    _drnflow("minor-update", "--bounded", "--window", "60 s", *where)
    rows = [serde.decode("WinRate", r.value) for r in read_committed(kafka_bootstrap, topic_names.win_rates)]
    ge_rows = [r for r in rows if r["model_id"] == "ge"]
    assert ge_rows and {r["model_version"] for r in ge_rows} == {record["version"]}
    assert {r["decision"] for r in ge_rows} <= {"ACCEPT", "REJECT"}, "the job tunes the served generator"

    from drnflow import datasets
    from drnflow.demo.inmemory import GreedyPolicy, GreedyRerankPolicy, make_ranker
    from models.ge.catalog_movielens import MovieLensCategories
    from models.simulator import WorldConfig
    from models.simulator.evaluate import evaluate_policy, paired_difference
    from operators.reranker import GeReranker, RerankerConfig, generator_config_from_architecture

    world = datasets.world(WorldConfig(seed=0))
    drn_major = next(w for w in _weights(kafka_bootstrap, topic_names) if w["model_id"] == "drn")
    drn = make_ranker("drn", drn_major, 0.1, 0)
    reranker = GeReranker(RerankerConfig(model_id="ge", top_m=10),
                          generator_config_from_architecture(record["architecture"]), MovieLensCategories())
    reranker.apply_weights(record)
    base = evaluate_policy(GreedyPolicy(drn), world, 600, 77, click_model_name="pbm")
    ge = evaluate_policy(GreedyRerankPolicy(drn, reranker, 10), world, 600, 77, click_model_name="pbm")
    gain, half = paired_difference(ge, base)
    assert gain - half > 0, f"trained generator {ge.ctr:.4f} vs DRN's order {base.ctr:.4f}: {gain:+.4f} ± {half:.4f}"
