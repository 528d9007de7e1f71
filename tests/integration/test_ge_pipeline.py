"""GE re-ranking through the live pipeline: `drnflow simulate --policy drn --reranker` serves DRN top-M +
the pointer generator from model-weights, the minor-update job tunes the generator by DBGD on its own
model_id ("ge"), and the MINOR versions it publishes are generator weights."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.ge.catalog_movielens import MovieLensCategories
from models.ge.pointer_generator import GeneratorConfig
from models.initial_model import initial_drn_record as initial_major
from models.simulator.world import ACTION_DIM, STATE_DIM
from models.weights import parse_model_weights_record
from operators.paths import PROJECT_ROOT
from operators.reranker import RerankerConfig, generator_architecture, initial_generator_record
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import publish, read_committed

pytestmark = pytest.mark.integration

GEN_ID, DRN_ID = "ge", "drn"
IMPRESSIONS = 600
GEN_VERSION = 3  # not 1, so "parent is the MAJOR's version" cannot pass by accident


def generator_config() -> GeneratorConfig:
    cats = MovieLensCategories()
    return GeneratorConfig(item_dim=ACTION_DIM, user_dim=STATE_DIM, n_shops=cats.n_shops, n_types=cats.n_types)


def simulate(bootstrap: str, names: TopicNames, *extra: str, impressions: int = IMPRESSIONS
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", bootstrap, "--topic-prefix", names.prefix,
         "--impressions", str(impressions), "--seed", "5", "--click-model", "pbm", "--policy", "drn",
         "--model-id", DRN_ID, "--reranker", "--reranker-model-id", GEN_ID, "--as-fast-as-possible",
         "--no-progress", *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )


def decoded(bootstrap: str, topic: str, schema: str) -> list[dict[str, Any]]:
    return [serde.decode(schema, r.value) for r in read_committed(bootstrap, topic)]


def test_reranked_traffic_tunes_the_generator(kafka_bootstrap: str, topic_names: TopicNames,
                                              tmp_path: Path) -> None:
    t0 = int(time.time() * 1000)
    drn_major = initial_major(DRN_ID, STATE_DIM, ACTION_DIM, 1, created_at=t0)
    gen_major = initial_generator_record(GEN_ID, generator_config(), seed=2, created_at=t0, version=GEN_VERSION)
    publish(kafka_bootstrap, topic_names.model_weights,
            [(r["model_id"].encode(), serde.encode("ModelWeights", r)) for r in (drn_major, gen_major)])

    sim = simulate(kafka_bootstrap, topic_names)
    assert sim.returncode == 0, sim.stderr[-3000:]

    impressions = decoded(kafka_bootstrap, topic_names.impressions, "Impression")
    assert len(impressions) == IMPRESSIONS
    assert {(i["model_id"], i["model_version"]) for i in impressions} == {(GEN_ID, GEN_VERSION)}
    assert all(i["generator"] == "pointer-greedy" for i in impressions)
    teams = {s["team"] for i in impressions for s in i["slots"]}
    assert teams == {"CURRENT", "EXPLORE"}, f"team-draft of current vs perturbed generator, got {teams}"

    rc = RerankerConfig()
    job = subprocess.run(
        [sys.executable, "-m", "jobs.minor_update", "--bounded", "--bootstrap", kafka_bootstrap,
         "--topic-prefix", topic_names.prefix, "--window", "20 s", "--attribution-window", "10 min",
         "--alpha", str(rc.alpha), "--perturbation", rc.perturbation.value, "--checkpoint-interval", "1 s",
         "--checkpoint-dir", str(tmp_path / "ckpt")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert job.returncode == 0, f"job failed:\n{job.stdout[-3000:]}\n{job.stderr[-6000:]}"

    rows = decoded(kafka_bootstrap, topic_names.name("win-rates"), "WinRate")
    assert rows and {r["model_id"] for r in rows} == {GEN_ID}
    # bounded: the end of input closes every window and attribution, so every impression is final
    assert sum(r["impressions"] for r in rows) == IMPRESSIONS
    assert {r["model_version"] for r in rows} == {GEN_VERSION}, "all traffic was served by the MAJOR"

    weights = decoded(kafka_bootstrap, topic_names.model_weights, "ModelWeights")
    minors = [w for w in weights if w["model_id"] == GEN_ID and w["kind"] == "MINOR"]
    assert not [w for w in weights if w["model_id"] == GEN_ID and w["kind"] == "MAJOR"
                and w["version"] != GEN_VERSION], "the job must not seed a DRN MAJOR for the generator's id"
    accepted = [r for r in rows if r["decision"] == "ACCEPT"]
    # the run is seeded end to end; with 20 s windows its first window's perturbed generator wins
    assert accepted, f"this seeded run is expected to ACCEPT at least once: {rows}"
    assert minors, "an ACCEPT row moves the generator: a MINOR version"
    assert minors[0]["parent_version"] == GEN_VERSION
    gen_flat, gen_layout = parse_model_weights_record(gen_major)
    for minor in minors:
        _, layout = parse_model_weights_record(minor)
        assert layout == gen_layout and minor["architecture"] == gen_major["architecture"]
    assert not np.array_equal(parse_model_weights_record(minors[0])[0], gen_flat), "DBGD moved the weights"

def test_missing_generator_is_one_sentence_and_publish_initial_fixes_it(kafka_bootstrap: str,
                                                                        topic_names: TopicNames) -> None:
    drn_major = initial_major(DRN_ID, STATE_DIM, ACTION_DIM, 1, created_at=int(time.time() * 1000))
    publish(kafka_bootstrap, topic_names.model_weights, [(b"drn", serde.encode("ModelWeights", drn_major))])

    missing = simulate(kafka_bootstrap, topic_names, "--weights-timeout", "2", impressions=5)
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr and "--publish-initial" in missing.stderr

    fixed = simulate(kafka_bootstrap, topic_names, "--publish-initial", impressions=5)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    weights = decoded(kafka_bootstrap, topic_names.model_weights, "ModelWeights")
    assert sorted((w["model_id"], w["kind"], w["version"]) for w in weights) == [
        (DRN_ID, "MAJOR", 1), (GEN_ID, "MAJOR", 1)], "only the missing generator MAJOR is published"
    published = next(w for w in weights if w["model_id"] == GEN_ID)
    assert published["architecture"] == generator_architecture(generator_config())
    impressions = decoded(kafka_bootstrap, topic_names.impressions, "Impression")
    assert len(impressions) == 5 and {i["model_id"] for i in impressions} == {GEN_ID}


@pytest.mark.parametrize("flags", [["--policy", "random", "--reranker"], ["--policy", "random", "--publish-initial"]])
def test_reranker_flags_need_their_partners(flags: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "drnflow", "simulate", "--bootstrap", "127.0.0.1:1",
                             "--impressions", "5", "--no-progress", *flags],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "use it with" in result.stderr
