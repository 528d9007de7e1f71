"""The one attribution rule set (models/attribution.py), pinned to design.md §4, and its callers agree.

The reference, the major update's transitions and the in-memory credit all call it, so one input must
give one answer in each; the JVM side is held to the reference in tests/integration/test_minor_update.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.attribution import attribute_clicks, index_impressions
from models.interleave import Outcome, credit
from models.reference import dedupe_impressions, impression_outcome
from models.transitions import build_transitions
from schemas.reasons import DUPLICATE, DUPLICATE_IMPRESSION, ITEM_NOT_SHOWN, OUTSIDE_WINDOW, UNKNOWN_REQUEST

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"
ATTR = 30 * 60_000


def imp(rid: str, t: int, teams: str, state: float = 0.0) -> dict[str, Any]:
    return {
        "request_id": rid, "user_id": "u", "event_time": t, "model_id": "m", "model_version": 1,
        "explore_seed": 7, "state_features": [state, 1.0],
        "slots": [{"item_id": f"i{k}", "position": k, "team": "EXPLORE" if c == "E" else "CURRENT",
                   "features": [float(k)]} for k, c in enumerate(teams)],
    }


def clk(rid: str, item: str, t: int) -> dict[str, Any]:
    return {"request_id": rid, "item_id": item, "event_time": t, "user_id": "u"}


def test_design_md_states_the_duplicate_impression_rule() -> None:
    text = " ".join(DESIGN.read_text().split())
    assert "the first impression of a request_id in topic order is kept" in text
    assert "Known disagreement" not in text


def test_the_first_impression_in_input_order_is_kept_even_when_a_later_one_is_earlier_in_event_time() -> None:
    imps = [imp("r", 2_000, "EC", state=1.0), imp("s", 2_500, "C"), imp("r", 1_000, "CE", state=2.0)]
    index = index_impressions(i["request_id"] for i in imps)
    assert index.first == {"r": 0, "s": 1}
    assert index.duplicates == [(2, 0)]

    kept, dead = dedupe_impressions(imps)
    assert {rid: pos for rid, (pos, _) in kept.items()} == {"r": 0, "s": 1}
    assert [(d["source_offset"], d["reason"]) for d in dead] == [(2, DUPLICATE_IMPRESSION)]

    ts = build_transitions(imps, [clk("r", "i0", 2_100)], log_end_ms=10_000)
    assert ts.skipped == {DUPLICATE_IMPRESSION: 1}
    row = ts.request_ids.index("r")
    assert ts.states[row].tolist() == [1.0, 1.0], "the transitions keep the same impression as the reference"
    assert ts.clicks[row].tolist() == [True, False]


def test_click_rules_in_order_and_the_first_passing_click_counts() -> None:
    impression_of = {"r": imp("r", 1_000, "EC")}
    clicks = [
        clk("r", "i0", 1_500),  # 0: a duplicate: click 4 is earlier in event time
        clk("x", "i0", 1_100),  # 1: UNKNOWN_REQUEST
        clk("r", "zz", 1_100),  # 2: ITEM_NOT_SHOWN before OUTSIDE_WINDOW
        clk("r", "i1", 1_000 + ATTR + 1),  # 3: OUTSIDE_WINDOW (both ends inclusive: +ATTR would count)
        clk("r", "i0", 1_200),  # 4: counts
        clk("r", "i1", 999),  # 5: OUTSIDE_WINDOW before the impression; does not use up (r, i1)
        clk("r", "i1", 1_000 + ATTR),  # 6: counts, at the inclusive end
    ]
    got = attribute_clicks(impression_of, clicks, ATTR)
    assert got.credited == {"r": {"i0", "i1"}}
    assert sorted((r.position, r.reason) for r in got.refused) == [
        (0, DUPLICATE), (1, UNKNOWN_REQUEST), (2, ITEM_NOT_SHOWN), (3, OUTSIDE_WINDOW), (5, OUTSIDE_WINDOW)]


def test_click_horizon_makes_a_far_click_an_unknown_request() -> None:
    got = attribute_clicks({"r": imp("r", 0, "E")}, [clk("r", "i0", 10_001)], ATTR, click_horizon_ms=10_000)
    assert [(r.reason, r.detail) for r in got.refused] == [
        (UNKNOWN_REQUEST, "Click.request_id 'r' has no impression within 10000 ms")]


def test_an_item_listed_twice_takes_the_team_of_its_first_slot_everywhere() -> None:
    twice = imp("r", 0, "EC")
    twice["slots"][1]["item_id"] = "i0"
    assert impression_outcome(twice, ["i0"]) == "EXPLORE"
    assert credit([(s["item_id"], s["team"]) for s in twice["slots"]], ["i0"]) is Outcome.EXPLORE
