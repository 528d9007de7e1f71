"""PDGD through the real job (issue 14): Plackett–Luce sampled impressions, their clicks attributed in the
JVM, each window's clicked impressions handed to the Python step as a PdgdBatch, one PDGD step per window:
the win-rate rows and the MINOR bytes are the in-memory reference's (models/reference.py, --learner pdgd).
Also: an impression the previous release wrote (schemas/previous) is read, not dead-lettered."""

from __future__ import annotations

import io
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest

from models.reference import ReferenceConfig, run_reference
from operators.pdgd_ranker import PdgdRanker
from operators.ranker import RankerConfig
from schemas import serde
from tests.integration.minor_update_data import ATTRIBUTION_MS, T0, WINDOW_MS, Stream, click, impression
from tests.integration.test_minor_update import decoded, job_config, major_m1, run_job

pytestmark = pytest.mark.integration

WINDOWS, PER_WINDOW, CANDIDATES, K = 3, 16, 10, 4
FLUSH_T = T0 + 6 * WINDOW_MS


def _ref_config(cfg: Any) -> ReferenceConfig:
    return ReferenceConfig(window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
                           pdgd=cfg.pdgd_config(), impressions_topic=cfg.topics.impressions,
                           clicks_topic=cfg.topics.clicks)


def pdgd_stream(cfg: Any, seed: int = 4) -> Stream:
    """WINDOWS windows of sampled lists of m1; window w is served by the version the reference's PDGD step
    made of window w-1, as a live ranker following model-weights would. Clicks favour the first feature."""
    rng = random.Random(seed)
    feats = np.random.default_rng(seed)
    ranker = PdgdRanker(RankerConfig(model_id="m1", base_seed=9), temperature=0.5)
    ranker.apply_weights(major_m1(cfg))
    s = Stream()
    for w in range(WINDOWS):
        for i in range(PER_WINDOW):
            t = T0 + w * WINDOW_MS + 200 + i * 500
            rid = f"p{w}-{i}"
            state = feats.normal(size=cfg.initial_state_dim).tolist()
            cands = [(f"{rid}/c{j}", feats.normal(size=cfg.initial_action_dim).tolist()) for j in range(CANDIDATES)]
            imp = ranker.rank(rid, f"u{i % 5}", t, state, cands, K)
            s.impressions.append(imp)
            for pos, slot in enumerate(imp["slots"]):
                if rng.random() < 0.15 + 0.25 * (slot["features"][0] > 0):
                    s.clicks.append(click(rid, slot["item_id"], t + 100 + pos))
        if w == 1:  # a second click on a clicked item: DUPLICATE, and counted once
            first = next(c for c in s.clicks if c["request_id"].startswith("p1-"))
            s.clicks.append(dict(first, event_time=first["event_time"] + 50))
        ref = run_reference(s.impressions, s.clicks, [major_m1(cfg)], _ref_config(cfg))
        if ref.model_weights:
            ranker.apply_weights(ref.model_weights[-1])
    s.impressions.append(impression("flush", FLUSH_T, "m1", 1, 0, "CC"))
    s.clicks.sort(key=lambda c: c["event_time"])
    return s


def _previous_release_bytes(record: dict[str, Any]) -> bytes:
    previous = serde.previous_schema_json("Impression")
    assert previous is not None
    schema = fastavro.parse_schema(serde._strip_logical_types(dict(previous)))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, {f["name"]: record.get(f["name"], f.get("default"))
                                             for f in previous["fields"]})
    return buf.getvalue()


@pytest.mark.parametrize("partitions", [1, 2])
def test_the_job_steps_pdgd_per_window_as_the_reference_does(kafka_bootstrap: str, tmp_path: Path,
                                                             partitions: int) -> None:
    """On one partition with parallelism 1, and on two with parallelism 2: the same bytes."""
    cfg = replace(job_config(kafka_bootstrap, "unused.", tmp_path), learner="pdgd", learning_rate=0.2)
    data = pdgd_stream(cfg)
    old = dict(impression("old-release", FLUSH_T + 100, "m1", 1, 0, "CC"), interleaving="team_draft")
    data.garbage = [("impressions", _previous_release_bytes(old))]
    run = run_job(kafka_bootstrap, tmp_path, stream=data, learner="pdgd", learning_rate=0.2, partitions=partitions,
                  parallelism=partitions)
    ref = run_reference(data.impressions, data.clicks, [major_m1(cfg)], _ref_config(cfg))

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["window_start"], r["model_version"], r["explore_seed"])

    got = sorted((r for r in decoded(run, "win-rates") if r["model_id"] == "m1"), key=key)
    want = sorted(ref.win_rates, key=key)
    flush_ws = FLUSH_T - FLUSH_T % WINDOW_MS
    assert [r for r in got if r["window_start"] != flush_ws] == [r for r in want if r["window_start"] != flush_ws]
    (flush_got,), (flush_want,) = ([r for r in rows if r["window_start"] == flush_ws] for rows in (got, want))
    assert flush_got["impressions"] == flush_want["impressions"] + 1, "the previous release's impression counts"
    assert [(r["model_version"], r["decision"]) for r in got[:WINDOWS]] == [(1, "ACCEPT"), (2, "ACCEPT"),
                                                                            (3, "ACCEPT")]
    minors = [w for w in decoded(run, "model-weights") if w["kind"] == "MINOR"]
    assert [(m["version"], m["parent_version"]) for m in minors] == [(2, 1), (3, 2), (4, 3)]
    assert minors == ref.model_weights, "the job's PDGD MINORs are the reference's, byte for byte"
    dead = decoded(run, "dead-letters")
    assert [d["reason"] for d in dead] == [d["reason"] for d in ref.dead_letters] == ["DUPLICATE"]
    if partitions > 1:
        from tests.integration.minor_update_data import read_committed

        spread = {r.partition for r in read_committed(kafka_bootstrap, run.cfg.topics.impressions)}
        assert spread == {0, 1}, "the input really was spread over two partitions"


def test_simulate_and_the_job_learn_by_pdgd_from_the_command_line(kafka_bootstrap: str, topic_names: Any) -> None:
    """The users' path: `simulate --policy drn --learner pdgd` logs sampled lists, `minor-update --learner pdgd`
    steps on them; the MINORs are the reference's of the topics as logged."""
    import subprocess
    import sys

    from tests.integration.minor_update_data import read_committed

    where = ["--bootstrap", kafka_bootstrap, "--prefix", topic_names.prefix]

    def drnflow(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "drnflow", *args, *where], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result.stdout + result.stderr

    drnflow("simulate", "--policy", "drn", "--learner", "pdgd", "--temperature", "0.05", "--publish-initial",
            "--impressions", "240", "--arrivals", "poisson", "--rate", "2", "--click-model", "pbm", "--seed", "2",
            "--no-progress")
    impressions = [serde.decode("Impression", r.value) for r in read_committed(kafka_bootstrap,
                                                                                 topic_names.impressions)]
    clicks = [serde.decode("Click", r.value) for r in read_committed(kafka_bootstrap, topic_names.clicks)]
    assert len(impressions) == 240 and clicks
    assert {i["interleaving"] for i in impressions} == {"pdgd"}
    assert all(i["pdgd"]["temperature"] == 0.05 and np.isfinite(i["pdgd"]["log_rest"]) for i in impressions)
    drnflow("minor-update", "--bounded", "--learner", "pdgd", "--learning-rate", "0.1", "--window", "60 s")
    weights = [serde.decode("ModelWeights", r.value) for r in read_committed(kafka_bootstrap,
                                                                              topic_names.model_weights)]
    major = [w for w in weights if w["kind"] == "MAJOR"]
    minors = [w for w in weights if w["kind"] == "MINOR"]
    # The ranker served v1 throughout (no job ran beside it): every window's samples are v1's, within
    # --max-staleness of the learner's version for the first windows, so each of those steps once.
    assert len(major) == 1 and len(minors) >= 2, weights
    assert [(m["version"], m["parent_version"]) for m in minors] == [(v, v - 1) for v in range(2, len(minors) + 2)]
    from jobs.minor_update_config import MinorUpdateConfig

    cfg = MinorUpdateConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_names.prefix, window="60 s",
                            learner="pdgd", learning_rate=0.1)
    ref = run_reference(impressions, clicks, major, ReferenceConfig(
        window_ms=cfg.window_ms, attribution_window_ms=cfg.attribution_window_ms, click_horizon_ms=cfg.click_horizon_ms,
        dbgd=cfg.dbgd_config(), pdgd=cfg.pdgd_config(), impressions_topic=topic_names.impressions,
        clicks_topic=topic_names.clicks))
    assert ref.model_weights == minors, "the job's MINOR is the reference's of the logged topics"
