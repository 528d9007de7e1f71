"""Automatic rollback on the real broker and a PyFlink mini-cluster: a MAJOR published on probation loses to
its parent in the interleaved windows, and the minor-update job writes the ROLLBACK (models/probation.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.probation import ProbationParams, probation_seed
from models.reference import ReferenceConfig, run_reference
from models.weights import from_bytes, make_model_weights_record, parse_model_weights_record
from tests.integration.minor_update_data import ATTRIBUTION_MS, T0, WINDOW_MS, Stream, click, impression
from tests.integration.test_minor_update import decoded, job_config, major_m1, run_job

pytestmark = pytest.mark.integration


def on_probation(parent: dict[str, Any], windows: int) -> dict[str, Any]:
    """m1 v2: v1's weights scaled by -1, a MAJOR on probation against v1."""
    flat, layout = parse_model_weights_record(parent)
    arch = ProbationParams(windows, 0.5).written_into(str(parent["architecture"] or ""))
    return make_model_weights_record("m1", 2, 1, "MAJOR", -flat, layout, T0 - 1, [], architecture=arch)


def stream() -> Stream:
    """Windows 0-1: v2 against its parent (probation seed), the parent's items clicked 3 times in 4; window 2:
    v3 (the expected ROLLBACK) explored with seed 99, its explore list winning; plus late rows of v2."""
    s = Stream()
    seed = probation_seed(2, 1)
    for w in range(3):
        for i in range(4):
            t = T0 + w * WINDOW_MS + 500 + i * 1000
            version, explore_seed = (2, seed) if w < 2 else (3, 99)
            rid = f"w{w}r{i}"
            s.impressions.append(impression(rid, t, "m1", version, explore_seed, "ECEC"))
            item = 0 if (w == 2 or i < 3) else 1  # slot 0 is the explore team's, slot 1 the current's
            s.clicks.append(click(rid, f"{rid}/i{item}", t + 200))
        if w == 2:
            rid = "late-v2"
            s.impressions.append(impression(rid, T0 + w * WINDOW_MS + 6000, "m1", 2, seed, "ECEC"))
            s.clicks.append(click(rid, f"{rid}/i1", T0 + w * WINDOW_MS + 6200))
    # One impression well after, so the watermark passes every window's attribution in the bounded run.
    s.impressions.append(impression("flush", T0 + 6 * WINDOW_MS, "m1", 3, 99, "EC"))
    return s


def test_a_major_that_loses_its_probation_is_rolled_back_by_the_job_as_the_reference_says(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    cfg = job_config(kafka_bootstrap, "probe.", tmp_path)
    parent = major_m1(cfg)
    candidate = on_probation(parent, windows=2)
    data = stream()
    run = run_job(kafka_bootstrap, tmp_path, stream=data, weights=[candidate])
    win_rates = decoded(run, "win-rates")
    by_key = {(r["window_start"] - T0) // WINDOW_MS: [] for r in win_rates}
    for r in win_rates:
        by_key[(r["window_start"] - T0) // WINDOW_MS].append((r["model_version"], r["decision"]))
    assert by_key[0] == [(2, "PROBATION")] and by_key[1] == [(2, "PROBATION")], by_key
    weights = decoded(run, "model-weights")
    rollback = [w for w in weights if w["kind"] == "ROLLBACK"]
    assert len(rollback) == 1, weights
    assert (rollback[0]["version"], rollback[0]["parent_version"]) == (3, 1)
    assert rollback[0]["weights"] == parent["weights"], "the ROLLBACK republishes the parent's weights"
    assert ProbationParams.read_from(rollback[0]["architecture"]) is None
    # Window 2: the late row of v2 is STALE; v3's explore list wins and DBGD goes on from the ROLLBACK.
    assert sorted(by_key[2]) == [(2, "STALE"), (3, "ACCEPT")], by_key
    minors = [w for w in weights if w["kind"] == "MINOR"]
    assert [(m["version"], m["parent_version"]) for m in minors] == [(4, 3)]
    assert not np.array_equal(from_bytes(minors[0]["weights"]), from_bytes(parent["weights"]))
    ref = run_reference(data.impressions, data.clicks, [parent, candidate],
                        ReferenceConfig(window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS,
                                        dbgd=cfg.dbgd_config(), impressions_topic=cfg.topics.impressions,
                                        clicks_topic=cfg.topics.clicks))

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["window_start"], r["model_version"], r["explore_seed"])

    assert sorted(win_rates, key=key) == sorted(ref.win_rates, key=key)
    assert [w for w in weights if w["kind"] != "MAJOR"] == ref.model_weights
