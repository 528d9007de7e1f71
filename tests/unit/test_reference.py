"""The plain-Python reference of design.md §4-§5 (models/reference.py): hand-written edge cases,
properties, determinism and a golden DBGD trajectory.

Regenerate the golden file after an intended change with
`DRNFLOW_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_reference.py -k golden`.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dbgd import DbgdConfig
from models.perturbation import explore_weights
from models.reference import (
    ReferenceConfig,
    attribute_clicks,
    dedupe_impressions,
    impression_outcome,
    run_reference,
    window_rows,
)
from models.weights import ParamSpec, from_bytes, make_model_weights_record
from schemas import serde

MIN = 60_000
WIN = 30 * MIN
ATTR = 30 * MIN
REGENERATE = "DRNFLOW_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_reference.py -k golden"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dbgd_trajectory.json"
SLOTS = (("a", "CURRENT"), ("b", "EXPLORE"), ("c", "CURRENT"), ("d", "EXPLORE"))
W0 = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)


def imp(
    rid: str,
    t: int,
    version: int = 1,
    seed: int = 7,
    model: str = "m",
    slots: tuple[tuple[str, str], ...] = SLOTS,
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "user_id": "u",
        "event_time": t,
        "model_id": model,
        "model_version": version,
        "explore_seed": seed,
        "slots": [{"item_id": item, "position": i, "team": team} for i, (item, team) in enumerate(slots)],
    }


def click(rid: str, item: str, t: int) -> dict[str, Any]:
    return {"request_id": rid, "item_id": item, "event_time": t}


def major(weights: np.ndarray = W0, model: str = "m", version: int = 1) -> dict[str, Any]:
    return make_model_weights_record(
        model, version, None, "MAJOR", weights, [ParamSpec("w", (weights.size,))], 0, []
    )


def fates(result_dead: list[dict[str, Any]], topic: str) -> dict[int, str]:
    return {d["source_offset"]: d["reason"] for d in result_dead if d["source_topic"] == topic}


# --- hand-written edge cases ---------------------------------------------------------------------
def test_attribution_boundaries_precedence_and_windows_by_hand() -> None:
    impressions = [
        imp("r1", 1000),  # 0
        imp("r2", WIN - 1),  # 1: last millisecond of window 0
        imp("r3", WIN),  # 2: first millisecond of window 1
        imp("r4", 5, seed=8),  # 3
        imp("r2", WIN + 5),  # 4: second impression of r2 -> DUPLICATE_IMPRESSION
        imp("r5", 2000),  # 5
    ]
    clicks = [
        click("r1", "b", 1000),  # 0: at the impression time: counts (EXPLORE)
        click("r1", "a", 1000 + ATTR),  # 1: exactly one attribution window later: counts (CURRENT)
        click("r1", "c", 1000 + ATTR + 1),  # 2: one ms too late
        click("r1", "d", 999),  # 3: one ms too early
        click("r1", "b", 2000),  # 4: repeat of click 0
        click("r1", "zz", 1500),  # 5: not shown
        click("r9", "a", 1500),  # 6: no such request
        click("r1", "zz", 999),  # 7: not shown AND too early -> ITEM_NOT_SHOWN first
        click("r9", "zz", 999),  # 8: unknown AND not shown -> UNKNOWN_REQUEST first
        click("r1", "b", 1000 + ATTR + 5),  # 9: repeat AND too late -> OUTSIDE_WINDOW first
        click("r2", "b", WIN + 10),  # 10: counts for r2's first impression (EXPLORE)
        click("r2", "b", WIN + 20),  # 11: repeat -> DUPLICATE
        click("r4", "a", 100),  # 12: CURRENT
        click("r4", "c", 200),  # 13: CURRENT -> r4 is a CURRENT win (0 vs 2)
        click("r5", "d", 1999),  # 14: too early: must not use up (r5, d)
        click("r5", "d", 2500),  # 15: counts (EXPLORE)
    ]
    res = run_reference(
        impressions,
        clicks,
        [major()],
        ReferenceConfig(window_ms=WIN, attribution_window_ms=ATTR, dbgd=DbgdConfig(max_staleness=2)),
    )
    assert fates(res.dead_letters, "impressions") == {4: "DUPLICATE_IMPRESSION"}
    assert fates(res.dead_letters, "clicks") == {
        2: "OUTSIDE_WINDOW",
        3: "OUTSIDE_WINDOW",
        4: "DUPLICATE",
        5: "ITEM_NOT_SHOWN",
        6: "UNKNOWN_REQUEST",
        7: "ITEM_NOT_SHOWN",
        8: "UNKNOWN_REQUEST",
        9: "OUTSIDE_WINDOW",
        11: "DUPLICATE",
        14: "OUTSIDE_WINDOW",
    }
    base = {"model_id": "m", "model_version": 1}
    assert res.win_rates == [
        # window 0, seed 7: r1 TIE (b vs a), r2 EXPLORE, r5 EXPLORE
        {
            **base,
            "window_start": 0,
            "window_end": WIN,
            "explore_seed": 7,
            "impressions": 3,
            "explore_wins": 2,
            "current_wins": 0,
            "ties": 1,
            "no_clicks": 0,
            "win_rate": 1.0,
            "decision": "ACCEPT",
        },
        # window 0, seed 8: r4 CURRENT
        {
            **base,
            "window_start": 0,
            "window_end": WIN,
            "explore_seed": 8,
            "impressions": 1,
            "explore_wins": 0,
            "current_wins": 1,
            "ties": 0,
            "no_clicks": 0,
            "win_rate": 0.0,
            "decision": "REJECT",
        },
        # window 1: r3 without clicks; v1 is one version behind v2, still usable
        {
            **base,
            "window_start": WIN,
            "window_end": 2 * WIN,
            "explore_seed": 7,
            "impressions": 1,
            "explore_wins": 0,
            "current_wins": 0,
            "ties": 0,
            "no_clicks": 1,
            "win_rate": None,
            "decision": "REJECT",
        },
    ]
    assert [
        (w["version"], w["parent_version"], w["explore_seeds"], w["window_start"]) for w in res.model_weights
    ] == [(2, 1, [7], 0)]
    for d in res.dead_letters:
        assert serde.decode("DeadLetter", serde.encode("DeadLetter", d)) == d
    dup = next(d for d in res.dead_letters if d["source_topic"] == "impressions")
    assert serde.decode("Impression", dup["raw_value"])["event_time"] == WIN + 5
    assert dup["raw_key"] == b"r2"


def test_click_horizon_turns_far_clicks_into_unknown_request_only() -> None:
    h = 3 * ATTR
    impressions = [imp("r1", 1000)]
    clicks = [
        click("r1", "b", 1500),  # 0: counts either way
        click("r1", "a", 1000 + 2 * ATTR),  # 1: outside the window, inside the horizon
        click("r1", "c", 1000 + h),  # 2: exactly at the horizon: still known
        click("r1", "d", 1000 + h + 1),  # 3: one ms past it
        click("r1", "zz", 1000 - h - 1),  # 4: before it by more than the horizon, and not shown
    ]
    kept, _ = dedupe_impressions(impressions)
    forever = fates(attribute_clicks(kept, clicks, ATTR)[1], "clicks")
    bounded = fates(attribute_clicks(kept, clicks, ATTR, click_horizon_ms=h)[1], "clicks")
    assert forever == {1: "OUTSIDE_WINDOW", 2: "OUTSIDE_WINDOW", 3: "OUTSIDE_WINDOW", 4: "ITEM_NOT_SHOWN"}
    assert bounded == {1: "OUTSIDE_WINDOW", 2: "OUTSIDE_WINDOW", 3: "UNKNOWN_REQUEST", 4: "UNKNOWN_REQUEST"}
    cfg = ReferenceConfig(window_ms=WIN, attribution_window_ms=ATTR, click_horizon_ms=h)
    res = run_reference(impressions, clicks, [major()], cfg)
    assert fates(res.dead_letters, "clicks") == bounded
    assert [r["explore_wins"] for r in res.win_rates] == [1]
    with pytest.raises(ValueError, match="click_horizon_ms"):
        ReferenceConfig(attribution_window_ms=ATTR, click_horizon_ms=ATTR - 1)


def test_stale_versions_and_models_without_weights() -> None:
    impressions = [imp("a", 10, version=1), imp("b", 20, version=5), imp("c", 30, model="n")]
    clicks = [click("a", "b", 50), click("b", "b", 60), click("c", "b", 70)]
    res = run_reference(impressions, clicks, [major()])
    assert [(r["model_id"], r["model_version"], r["decision"]) for r in res.win_rates] == [
        ("m", 1, "ACCEPT"),
        ("m", 5, "STALE"),
        ("n", 1, "STALE"),
    ]
    assert len(res.model_weights) == 1 and res.model_weights[0]["model_id"] == "m"


def test_impression_outcome_rules() -> None:
    i = imp("r", 0)
    assert impression_outcome(i, []) == "NO_CLICK"
    assert impression_outcome(i, ["b"]) == "EXPLORE"
    assert impression_outcome(i, ["a", "c", "b"]) == "CURRENT"
    assert impression_outcome(i, ["a", "b"]) == "TIE"
    assert impression_outcome(i, ["a", "b", "c", "d"]) == "TIE"
    twice = imp("r", 0, slots=(("x", "EXPLORE"), ("x", "CURRENT"), ("y", "CURRENT")))
    assert impression_outcome(twice, ["x"]) == "EXPLORE"  # first slot's team


def test_windows_align_to_epoch_and_negative_times_floor() -> None:
    kept, _ = dedupe_impressions([imp("a", -1), imp("b", 0), imp("c", WIN - 1), imp("d", 7 * WIN + 3)])
    rows = window_rows(kept, {}, WIN)
    assert sorted(ws for ws, _ in rows) == [-WIN, 0, 7 * WIN]
    assert rows[(0, "m")][0]["impressions"] == 2


# --- properties ----------------------------------------------------------------------------------
ITEMS = ["a", "b", "c", "d", "zz"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n_imp = draw(st.integers(0, 12))
    impressions = []
    for _ in range(n_imp):
        rid = f"r{draw(st.integers(0, 8))}"
        teams = draw(st.lists(st.sampled_from(["CURRENT", "EXPLORE"]), min_size=1, max_size=4))
        slots = tuple((ITEMS[i], team) for i, team in enumerate(teams))
        impressions.append(
            imp(
                rid,
                draw(st.integers(0, 4 * WIN)),
                version=draw(st.integers(1, 2)),
                seed=draw(st.integers(0, 2)),
                model=draw(st.sampled_from(["m", "n"])),
                slots=slots,
            )
        )
    clicks = [
        click(f"r{draw(st.integers(0, 10))}", draw(st.sampled_from(ITEMS)), draw(st.integers(-MIN, 5 * WIN)))
        for _ in range(draw(st.integers(0, 25)))
    ]
    return impressions, clicks


@settings(max_examples=60, deadline=None)
@given(streams(), st.randoms(use_true_random=False))
def test_properties_of_attribution_and_counts(
    stream: tuple[list[Any], list[Any]], rnd: random.Random
) -> None:
    impressions, clicks = stream
    cfg = ReferenceConfig(dbgd=DbgdConfig(max_staleness=1))
    res = run_reference(impressions, clicks, [major(), major(model="n")], cfg)
    distinct = {i["request_id"] for i in impressions}
    # Outcome counts add up per row, and every distinct request is counted exactly once.
    for r in res.win_rates:
        assert r["explore_wins"] + r["current_wins"] + r["ties"] + r["no_clicks"] == r["impressions"]
    assert sum(r["impressions"] for r in res.win_rates) == len(distinct)
    # Every impression and every click has exactly one fate.
    dead_imp = fates(res.dead_letters, "impressions")
    assert len(dead_imp) == len(impressions) - len(distinct)
    kept, _ = dedupe_impressions(impressions)
    credited, dead_clicks = attribute_clicks(kept, clicks, cfg.attribution_window_ms)
    assert sum(len(items) for items in credited.values()) + len(dead_clicks) == len(clicks)
    assert len({d["source_offset"] for d in dead_clicks}) == len(dead_clicks)
    # A credited click satisfies every rule of §4.
    for rid, items in credited.items():
        shown = {s["item_id"] for s in kept[rid][1]["slots"]}
        assert items <= shown
    # The order clicks arrive in does not change the rows (DUPLICATE picks by event time).
    shuffled = clicks[:]
    rnd.shuffle(shuffled)
    again = run_reference(impressions, shuffled, [major(), major(model="n")], cfg)
    assert again.win_rates == res.win_rates
    assert [serde.encode("ModelWeights", w) for w in again.model_weights] == [
        serde.encode("ModelWeights", w) for w in res.model_weights
    ]


# --- golden trajectory ---------------------------------------------------------------------------
def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def synthetic_stream(
    seed: int = 20240611, windows: int = 20, per_window: int = 60
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], ReferenceConfig, np.ndarray]:
    """A closed loop: users prefer lists from weights closer to a hidden `target`; the ranker serves
    the newest version published (window_end + attribution window) before each window starts."""
    rng = np.random.default_rng(seed)
    d = 16
    w0 = rng.normal(size=d).astype(np.float32)
    target = rng.normal(size=d)
    cfg = ReferenceConfig(window_ms=WIN, attribution_window_ms=ATTR, dbgd=DbgdConfig(eta=0.5, alpha=0.2))
    assert cfg.dbgd is not None
    initial = major(w0)
    published: dict[int, tuple[np.ndarray, int]] = {1: (w0, -1)}
    impressions: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for k in range(windows):
        ws = k * WIN
        serve = max(v for v, (_, at) in published.items() if at <= ws)
        w = published[serve][0]
        seeds = [int(s) for s in rng.integers(0, 2**31, size=2)]
        for j in range(per_window):
            t = ws + int(rng.integers(0, WIN))
            seed = seeds[j % 2]
            gain = _cos(explore_weights(w, seed, cfg.dbgd.alpha), target) - _cos(w, target)
            rid = f"q{k}-{j}"
            slots = tuple((f"i{k}-{j}-{s}", "CURRENT" if s % 2 == 0 else "EXPLORE") for s in range(4))
            impressions.append(imp(rid, t, version=serve, seed=seed, slots=slots))
            for item, team in slots:
                p = float(np.clip(0.25 + (8.0 if team == "EXPLORE" else -8.0) * gain, 0.02, 0.95))
                if rng.random() < p:
                    clicks.append(click(rid, item, t + int(rng.integers(0, ATTR + 1))))
                    if rng.random() < 0.05:
                        clicks.append(click(rid, item, t + int(rng.integers(0, ATTR + 1))))  # duplicate
            if rng.random() < 0.03:
                clicks.append(click(rid, slots[0][0], t + ATTR + 1 + int(rng.integers(0, MIN))))  # too late
            if rng.random() < 0.02:
                clicks.append(click(f"lost{k}-{j}", "x", t))  # unknown request
        for rec in run_reference(impressions, clicks, [initial], cfg).model_weights:
            if rec["version"] not in published:
                published[rec["version"]] = (from_bytes(rec["weights"]), int(rec["window_end"]) + ATTR)
    return impressions, clicks, initial, cfg, target


def trajectory(res: Any, initial: dict[str, Any]) -> list[dict[str, Any]]:
    """Per window: its decisions, and the version and weight norm the learner holds after it."""
    minors = {w["window_start"]: w for w in res.model_weights}
    out: list[dict[str, Any]] = []
    version = initial["version"]
    norm = float(np.linalg.norm(from_bytes(initial["weights"]).astype(np.float64)))
    for ws in sorted({r["window_start"] for r in res.win_rates}):
        if ws in minors:
            version = minors[ws]["version"]
            norm = float(np.linalg.norm(from_bytes(minors[ws]["weights"]).astype(np.float64)))
        decisions = [
            [r["model_version"], r["explore_seed"], r["decision"]]
            for r in res.win_rates
            if r["window_start"] == ws
        ]
        out.append(
            {"window_start": ws, "decisions": decisions, "version": version, "weight_l2": round(norm, 6)}
        )
    return out


def test_golden_trajectory() -> None:
    impressions, clicks, initial, cfg, target = synthetic_stream()
    res = run_reference(impressions, clicks, [initial], cfg)
    got: dict[str, Any] = {
        "regenerate": REGENERATE,
        "stream": {"seed": 20240611, "windows": 20, "per_window": 60, "eta": 0.5, "alpha": 0.2},
        "windows": trajectory(res, initial),
    }
    if os.environ.get("DRNFLOW_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == expected
    # And the loop learned something: the last version is closer to what users prefer.
    first_w = from_bytes(initial["weights"])
    last_w = from_bytes(res.model_weights[-1]["weights"])
    assert _cos(last_w, target) > _cos(first_w, target)
    decided = {d for w in got["windows"] for _, _, d in w["decisions"]}
    assert {"ACCEPT", "REJECT"} <= decided
