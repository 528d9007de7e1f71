"""TriggerSchedule (models/triggers.py): when major updates are asked for, and with which ranges."""

from __future__ import annotations

from typing import Any

import pytest

from models.triggers import TriggerConfig, TriggerSchedule
from schemas import serde

MIN = 60_000
WIN = 30 * MIN


def feed(
    sched: TriggerSchedule,
    windows: list[tuple[int, int, int]],
    model: str = "m",
    ranges: list[list[tuple[str, int, int, int]]] | None = None,
) -> list[dict[str, Any] | None]:
    """windows: (window index, minor_count, base_version) of 30-min windows."""
    out = []
    for i, (k, minors, version) in enumerate(windows):
        rs = ranges[i] if ranges is not None else []
        out.append(sched.on_window_end(model, k * WIN, (k + 1) * WIN, minors, version, rs))
    return out


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"every_ms": 0}, "every_ms"),
        ({"every_minor": 0}, "every_minor"),
        ({"every_ms": None, "every_minor": None}, "neither"),
        ({"impressions_topic": "x", "clicks_topic": "x"}, "two different"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        TriggerConfig(**kwargs)


def test_schedule_fires_every_hour_of_event_time_aligned_to_epoch() -> None:
    sched = TriggerSchedule()  # DRN: every 60 min, no minor count
    fired = feed(sched, [(0, 0, 1), (1, 1, 2), (2, 1, 2), (3, 2, 3), (4, 2, 3)])
    assert [t is not None for t in fired] == [False, True, False, True, False]
    first, second = fired[1], fired[3]
    assert first is not None and second is not None
    assert first == {
        "model_id": "m",
        "trigger_id": "m-2-3600000",
        "created_at": 60 * MIN,
        "reason": "SCHEDULE",
        "base_version": 2,
        "minor_updates_since_major": 1,
        "event_time_start": 0,
        "event_time_end": 60 * MIN,
        "impression_offsets": [],
        "click_offsets": [],
    }
    assert (second["event_time_start"], second["event_time_end"], second["trigger_id"]) == (
        60 * MIN,
        120 * MIN,
        "m-3-7200000",
    )
    serde.encode("MajorUpdateTrigger", first)


def test_first_range_starts_at_the_first_window_even_mid_period() -> None:
    fired = feed(TriggerSchedule(), [(1, 0, 1)])  # window [30 min, 60 min) ends on the hour
    assert fired[0] is not None
    assert (fired[0]["event_time_start"], fired[0]["event_time_end"]) == (30 * MIN, 60 * MIN)


def test_minor_count_trigger_counts_minors_since_the_last_trigger_across_a_major() -> None:
    sched = TriggerSchedule(TriggerConfig(every_ms=None, every_minor=3))
    # minor_count as the learner reports it: +1 per MINOR, back to 0 on a MAJOR (after window 5).
    counts = [1, 2, 3, 4, 5, 0, 1, 1, 2]
    fired = feed(sched, [(k, c, 10 + k) for k, c in enumerate(counts)])
    reasons = [t["reason"] if t else None for t in fired]
    # Minors 4 and 5, then 1 after the MAJOR: three since the first trigger.
    assert reasons == [None, None, "MINOR_COUNT", None, None, None, "MINOR_COUNT", None, None]
    last = fired[6]
    assert last is not None
    assert last["minor_updates_since_major"] == 1
    assert last["event_time_start"] == 3 * WIN and last["event_time_end"] == 7 * WIN


def test_schedule_wins_when_both_are_due_and_resets_the_minor_count() -> None:
    sched = TriggerSchedule(TriggerConfig(every_ms=60 * MIN, every_minor=2))
    fired = feed(sched, [(0, 1, 1), (1, 2, 2), (2, 3, 3), (3, 4, 4)])
    assert [t["reason"] if t else None for t in fired] == [None, "SCHEDULE", None, "SCHEDULE"]
    fired = feed(
        TriggerSchedule(TriggerConfig(every_ms=120 * MIN, every_minor=2)),
        [(0, 1, 1), (1, 2, 2), (2, 3, 3), (3, 4, 4)],
    )
    assert [t["reason"] if t else None for t in fired] == [None, "MINOR_COUNT", None, "SCHEDULE"]


def test_offset_ranges_accumulate_and_continue_where_the_last_trigger_ended() -> None:
    sched = TriggerSchedule(TriggerConfig(impressions_topic="p.impressions", clicks_topic="p.clicks"))
    ranges = [
        [("p.impressions", 0, 0, 10), ("p.impressions", 1, 0, 5), ("p.clicks", 0, 0, 3)],
        [("p.impressions", 0, 10, 25), ("p.clicks", 0, 2, 4)],
        [("p.impressions", 0, 26, 30), ("p.clicks", 1, 7, 9)],
        [("p.impressions", 1, 5, 6)],
    ]
    fired = feed(sched, [(0, 0, 1), (1, 0, 1), (2, 0, 1), (3, 0, 1)], ranges=ranges)
    first, second = fired[1], fired[3]
    assert first is not None and second is not None
    assert first["impression_offsets"] == [
        {"topic": "p.impressions", "partition": 0, "start_offset": 0, "end_offset": 25},
        {"topic": "p.impressions", "partition": 1, "start_offset": 0, "end_offset": 5},
    ]
    assert first["click_offsets"] == [
        {"topic": "p.clicks", "partition": 0, "start_offset": 0, "end_offset": 4}
    ]
    # Partition 0 continues from 25 (not 26): nothing between two triggers is lost.
    assert second["impression_offsets"] == [
        {"topic": "p.impressions", "partition": 0, "start_offset": 25, "end_offset": 30},
        {"topic": "p.impressions", "partition": 1, "start_offset": 5, "end_offset": 6},
    ]
    assert second["click_offsets"] == [
        {"topic": "p.clicks", "partition": 1, "start_offset": 7, "end_offset": 9}
    ]
    serde.encode("MajorUpdateTrigger", second)


def test_last_window_end_is_per_model_and_survives_a_snapshot() -> None:
    s = TriggerSchedule(TriggerConfig())
    assert s.last_window_end("a") is None
    s.on_window_end("a", 0, 60_000, 0, 1, [])
    s.on_window_end("a", 60_000, 120_000, 0, 1, [])
    assert s.last_window_end("a") == 120_000
    assert s.last_window_end("b") is None
    restored = TriggerSchedule(TriggerConfig())
    restored.restore("a", s.snapshot("a"))
    assert restored.last_window_end("a") == 120_000


def test_bad_inputs_raise() -> None:
    sched = TriggerSchedule()
    with pytest.raises(ValueError, match="topic 'clicks-x'"):
        sched.on_window_end("m", 0, WIN, 0, 1, [("clicks-x", 0, 0, 1)])
    with pytest.raises(ValueError, match="start <= end"):
        sched.on_window_end("m", 0, WIN, 0, 1, [("clicks", 0, 5, 1)])
    sched.on_window_end("m", WIN, 2 * WIN, 0, 1, [])
    with pytest.raises(ValueError, match="event-time order"):
        sched.on_window_end("m", 0, WIN, 0, 1, [])
    with pytest.raises(ValueError, match="must be > window_start"):
        sched.on_window_end("m", 5 * WIN, 5 * WIN, 0, 1, [])


def test_models_are_independent_and_snapshots_restore_the_same_future() -> None:
    a = TriggerSchedule(TriggerConfig(every_minor=2))
    feed(a, [(0, 1, 1)], model="x", ranges=[[("impressions", 0, 0, 4)]])
    feed(a, [(0, 0, 1), (1, 0, 1)], model="y")
    assert a.models() == ["x", "y"]
    b = TriggerSchedule(TriggerConfig(every_minor=2))
    for model in a.models():
        b.restore(model, a.snapshot(model))
        assert b.snapshot(model) == a.snapshot(model)
    tail = [(1, 2, 2)]
    assert feed(a, tail, model="x", ranges=[[("impressions", 0, 4, 9)]]) == feed(
        b, tail, model="x", ranges=[[("impressions", 0, 4, 9)]]
    )
    with pytest.raises(ValueError, match="corrupt trigger-schedule snapshot"):
        b.restore("x", b"{")
