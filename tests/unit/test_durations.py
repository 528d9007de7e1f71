"""Flink-style durations <-> int millis (schemas/durations.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.durations import duration_ms, format_duration_ms, parse_duration_ms

MIN = 60_000
HOUR = 60 * MIN


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("60s", 60_000),
        ("30min", 30 * MIN),
        ("30 min", 30 * MIN),
        ("1h", HOUR),
        ("500ms", 500),
        ("2d", 2 * 24 * HOUR),
        ("1 min", MIN),
        ("5m", 5 * MIN),
        ("3 minutes", 3 * MIN),
        ("1 minute", MIN),
        ("2 hours", 2 * HOUR),
        ("1 hour", HOUR),
        ("1 day", 24 * HOUR),
        ("3 days", 3 * 24 * HOUR),
        ("10 sec", 10_000),
        ("10 secs", 10_000),
        ("1 second", 1_000),
        ("7 seconds", 7_000),
        ("4 milli", 4),
        ("4 millis", 4),
        ("4 millisecond", 4),
        ("4 milliseconds", 4),
        ("250", 250),
        ("  90S  ", 90_000),
        ("1H", HOUR),
        ("2000µs", 2),
        ("3000000ns", 3),
        ("0s", 0),
    ],
)
def test_parse_accepts_flink_units(text: str, millis: int) -> None:
    assert parse_duration_ms(text) == millis


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("min", "'min' is not a non-negative integer"),
        ("-5s", "'-5s' is not a non-negative integer"),
        ("1.5h", "duration '1.5h': unit '.5h'"),
        ("30 mins!", "unit 'mins!'"),
        ("10 weeks", "unit 'weeks'"),
        ("1h30min", "unit 'h30min'"),
        ("1500µs", "not a whole number of milliseconds"),
        ("99999999999999999999d", "overflows"),
    ],
)
def test_parse_rejects_bad_text_naming_it(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration_ms(text)
    assert fragment in str(err.value)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration_ms(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("millis", "text"),
    [(0, "0 ms"), (500, "500 ms"), (60_000, "1 min"), (90_000, "90 s"), (30 * MIN, "30 min"),
     (HOUR, "1 h"), (36 * HOUR, "36 h"), (48 * HOUR, "2 d"), (1_001, "1001 ms")],
)
def test_format_uses_highest_exact_unit_like_flink(millis: int, text: str) -> None:
    assert format_duration_ms(millis) == text


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_round_trips(millis: int) -> None:
    assert parse_duration_ms(format_duration_ms(millis)) == millis


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_format_rejects_non_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        format_duration_ms(bad)  # type: ignore[arg-type]


def test_duration_ms_takes_ints_or_strings() -> None:
    assert duration_ms(1_000) == 1_000
    assert duration_ms("30 min") == 30 * MIN
    with pytest.raises(ValueError, match=">= 0"):
        duration_ms(-1)
    with pytest.raises(ValueError, match="int millis or a string"):
        duration_ms(False)
