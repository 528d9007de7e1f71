"""MGD's per-team credit through the real job: a multileaved impression (several explore seeds) counts in one
row per seed, each seed's slots against the CURRENT ones (design.md §4), and the MINOR moves W by the mean
of the winning seeds' directions, as the in-memory reference says (models/interleave.seed_outcomes)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from models.reference import ReferenceConfig, run_reference
from tests.integration.minor_update_data import ATTRIBUTION_MS, T0, WINDOW_MS, Stream, click
from tests.integration.test_minor_update import decoded, job_config, major_m1, run_job

pytestmark = pytest.mark.integration

SEEDS = [11, 22, 33]


def multileaved(rid: str, t: int, version: int, teams: list[int | None]) -> dict[str, Any]:
    """Slots by team: None is CURRENT, a seed is that explore list's slot."""
    return {
        "request_id": rid, "user_id": f"u-{rid}", "event_time": t, "model_id": "m1", "model_version": version,
        "explore_seed": SEEDS[0], "explore_seeds": list(SEEDS),
        "slots": [{"item_id": f"{rid}/i{k}", "position": k, "team": "CURRENT" if s is None else "EXPLORE",
                   "features": [0.5, float(k)], "explore_seed": s} for k, s in enumerate(teams)],
        "state_features": [1.0, 2.0],
    }


def stream(seed: int = 5) -> Stream:
    """Three windows of multileaved impressions of m1 v1 with random clicks; seed 11's slots clicked most."""
    rng = random.Random(seed)
    s = Stream()
    teams: list[int | None] = [None, 11, 22, None, 33, 11, 22, 33]
    for w in range(3):
        for i in range(6):
            t = T0 + w * WINDOW_MS + 300 + i * 1200
            rid = f"w{w}r{i}"
            s.impressions.append(multileaved(rid, t, 1, teams))
            for k, team in enumerate(teams):
                p = 0.7 if team == 11 else 0.3
                if rng.random() < p:
                    s.clicks.append(click(rid, f"{rid}/i{k}", t + 100 + k))
    dup = multileaved("dup-seeds", T0 + 2 * WINDOW_MS + 9000, 1, teams)
    dup["explore_seeds"] = [11, 11, 22, 33]  # a repeated seed is one team
    s.impressions.append(dup)
    s.clicks.append(click("dup-seeds", "dup-seeds/i1", T0 + 2 * WINDOW_MS + 9100))
    s.impressions.append(multileaved("flush", T0 + 6 * WINDOW_MS, 1, teams))
    s.clicks.sort(key=lambda c: c["event_time"])
    return s


def test_multileaved_impressions_are_credited_per_team_as_the_reference_says(kafka_bootstrap: str,
                                                                            tmp_path: Path) -> None:
    data = stream()
    run = run_job(kafka_bootstrap, tmp_path, stream=data)
    cfg = job_config(kafka_bootstrap, "unused.", tmp_path)
    ref = run_reference(data.impressions, data.clicks, [major_m1(cfg)],
                        ReferenceConfig(window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS,
                                        dbgd=cfg.dbgd_config(), impressions_topic=cfg.topics.impressions,
                                        clicks_topic=cfg.topics.clicks))
    got = [r for r in decoded(run, "win-rates") if r["model_id"] == "m1"]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["window_start"], r["model_version"], r["explore_seed"])

    assert sorted(got, key=key) == sorted(ref.win_rates, key=key)
    first = [r for r in got if r["window_start"] == T0]
    assert sorted(r["explore_seed"] for r in first) == SEEDS, "one row per explore seed"
    assert all(r["impressions"] == 6 for r in first), "each impression counts in every seed's row"
    last = [r for r in got if r["window_start"] == T0 + 2 * WINDOW_MS]
    assert all(r["impressions"] == 7 for r in last), "the repeated seed counted the impression once"
    decisions = {r["explore_seed"]: r["decision"] for r in first}
    assert decisions[11] == "ACCEPT", first
    minors = [w for w in decoded(run, "model-weights") if w["model_id"] == "m1" and w["kind"] == "MINOR"]
    assert minors and minors == [w for w in ref.model_weights if w["model_id"] == "m1"]
    assert decoded(run, "dead-letters") == []
