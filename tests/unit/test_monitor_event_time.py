"""The Avro-prefix event-time reader (used by monitor's lag and replay's pacing) against a full decode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drnflow.tools.timespec import format_time_ms, parse_time_ms
from schemas import serde
from schemas.event_time import event_time_of

texts = st.text(max_size=40)
times = st.integers(-(2**62), 2**62)


@settings(max_examples=60, deadline=None)
@given(texts, texts, times)
def test_click_event_time_equals_full_decode(request_id: str, item_id: str, t: int) -> None:
    value = serde.encode("Click", {"request_id": request_id, "item_id": item_id, "event_time": t, "user_id": None})
    assert event_time_of(value) == serde.decode("Click", value)["event_time"] == t


@settings(max_examples=60, deadline=None)
@given(texts, texts, times)
def test_impression_event_time_equals_full_decode(request_id: str, user_id: str, t: int) -> None:
    record = {"request_id": request_id, "user_id": user_id, "event_time": t, "model_id": "m", "model_version": 1,
              "explore_seed": 2, "slots": [{"item_id": "i", "position": 0, "team": "EXPLORE", "features": [],
                                             "explore_seed": None}], "state_features": [], "explore_seeds": [],
              "interleaving": "team-draft", "generator": None}
    value = serde.encode("Impression", record)
    assert event_time_of(value) == t


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=12))
def test_garbage_gives_none_or_an_int_never_raises(data: bytes) -> None:
    assert event_time_of(data) is None or isinstance(event_time_of(data), int)


def test_truncated_values_give_none() -> None:
    value = serde.encode("Click", {"request_id": "r1", "item_id": "i1", "event_time": 1_700_000_000_000,
                                   "user_id": None})
    assert event_time_of(value[:6]) is None
    assert event_time_of(b"") is None and event_time_of(None) is None


def test_time_specs() -> None:
    assert parse_time_ms("1700000000000") == 1_700_000_000_000
    assert parse_time_ms("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_time_ms("2023-11-14T23:13:20+01:00") == 1_700_000_000_000
    assert format_time_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    try:
        parse_time_ms("yesterday")
    except ValueError as e:
        assert "ISO-8601" in str(e)
    else:
        raise AssertionError("'yesterday' must be refused")
