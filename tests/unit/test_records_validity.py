"""The record-validity rules both sides apply (schemas/records.py; the JVM deserializer says the same)."""

from __future__ import annotations

from models.reference import ReferenceConfig, run_reference
from schemas.records import MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, record_problem, skew_problem

HOUR = 3_600_000


def test_skew_bound_at_its_edge_and_off() -> None:
    assert skew_problem(10 + 6 * HOUR, 10, 6 * HOUR) is None  # exactly at the bound: kept
    text = skew_problem(11 + 6 * HOUR, 10, 6 * HOUR)
    assert text is not None and f"is {6 * HOUR + 1} ms ahead of the record's Kafka timestamp 10" in text
    assert skew_problem(10**12, 0, 0) is None, "0 = no bound"
    assert skew_problem(10**12, -1, HOUR) is None, "a record without a timestamp is not judged"
    assert skew_problem(0, 10**12, HOUR) is None, "old event times are never out of range"
    assert skew_problem(MAX_EVENT_TIME_MS - 1, 0, HOUR) is not None
    assert skew_problem(MIN_EVENT_TIME_MS, 0, HOUR) is None


def test_range_rule_at_long_min_and_max() -> None:
    base = {"explore_seed": 0}
    assert record_problem("Click", {**base, "event_time": -(2**63)}) is not None
    assert record_problem("Click", {**base, "event_time": 2**63 - 1}) is not None
    assert record_problem("Click", {**base, "event_time": MAX_EVENT_TIME_MS}) is not None
    assert record_problem("Click", {**base, "event_time": MAX_EVENT_TIME_MS - 1}) is None
    assert record_problem("Click", {**base, "event_time": MIN_EVENT_TIME_MS}) is None


def test_the_reference_dead_letters_out_of_range_records_and_they_change_no_row() -> None:
    t0 = 1_700_000_000_000

    def imp(rid: str, t: int) -> dict[str, object]:
        return {"request_id": rid, "user_id": "u", "event_time": t, "model_id": "m", "model_version": 1,
                "explore_seed": 3, "slots": [{"item_id": f"{rid}/0", "position": 0, "team": "EXPLORE",
                                             "features": [], "score": 0.0}],
                "state_features": [], "served_at": None}

    cfg = ReferenceConfig(window_ms=60_000, attribution_window_ms=10_000, max_event_time_skew_ms=HOUR)
    imps = [imp("a", t0), imp("far", t0 + 2 * HOUR), imp("b", t0 + 1000)]
    clicks = [{"request_id": "a", "item_id": "a/0", "event_time": t0 + 10, "served_at": None}]
    ref = run_reference(imps, clicks, config=cfg, impression_timestamps=[t0, t0, t0], click_timestamps=[t0])
    assert [(d["source_offset"], d["reason"]) for d in ref.dead_letters] == [(1, "OUT_OF_RANGE")]
    plain = run_reference([imps[0], imps[2]], clicks, config=cfg)
    assert [r["impressions"] for r in ref.win_rates] == [r["impressions"] for r in plain.win_rates] == [2]
