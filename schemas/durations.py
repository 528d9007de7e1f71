"""Durations written the way Flink writes them ("30 min", "60s", "1h", "500ms") <-> int milliseconds.

Parsing follows Flink's `TimeUtils.parseDuration`: an unsigned integer, optional spaces, then a unit
label (case-insensitive); no label means milliseconds. Event times in drnflow are int millis, so a
duration that is not a whole number of milliseconds (e.g. "1500us") is refused rather than rounded.
"""

from __future__ import annotations

import re

#: Unit label -> nanoseconds, with the labels of Flink's TimeUtils.TimeUnit (the first is the one
#: Flink writes; "plural" labels also accept a trailing "s").
_UNITS: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...] = (
    (86_400_000_000_000, ("d",), ("day",)),
    (3_600_000_000_000, ("h",), ("hour",)),
    (60_000_000_000, ("min", "m"), ("minute",)),
    (1_000_000_000, ("s",), ("sec", "second")),
    (1_000_000, ("ms",), ("milli", "millisecond")),
    (1_000, ("µs",), ("micro", "microsecond")),
    (1, ("ns",), ("nano", "nanosecond")),
)

_LABEL_TO_NANOS: dict[str, int] = {}
for _nanos, _singular, _plural in _UNITS:
    for _label in _singular:
        _LABEL_TO_NANOS[_label] = _nanos
    for _label in _plural:
        _LABEL_TO_NANOS[_label] = _nanos
        _LABEL_TO_NANOS[_label + "s"] = _nanos

_NANOS_PER_MS = 1_000_000
_PATTERN = re.compile(r"(\d+)\s*(\S*)")
#: Flink's Duration overflows past Long.MAX_VALUE nanoseconds-ish; we bound millis to a signed long.
_MAX_MS = 2**63 - 1


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a Flink-style duration such as "30 min", "60s", "1h", "500ms" or "2 days"."""
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '30 min', got {type(text).__name__} {text!r}")
    trimmed = text.strip().lower()
    if not trimmed:
        raise ValueError("duration is empty; write a number and a unit, e.g. '30 min'")
    match = _PATTERN.fullmatch(trimmed)
    if match is None:
        raise ValueError(
            f"duration {text!r} is not a non-negative integer followed by a unit (e.g. '30 min', '500ms')"
        )
    number, label = int(match.group(1)), match.group(2)
    nanos_per_unit = _NANOS_PER_MS if not label else _LABEL_TO_NANOS.get(label)
    if nanos_per_unit is None:
        raise ValueError(f"duration {text!r}: unit {label!r} is not one of {', '.join(_LABEL_TO_NANOS)}")
    nanos = number * nanos_per_unit
    if nanos % _NANOS_PER_MS:
        raise ValueError(f"duration {text!r} is not a whole number of milliseconds")
    millis = nanos // _NANOS_PER_MS
    if millis > _MAX_MS:
        raise ValueError(f"duration {text!r} overflows a 64-bit count of milliseconds")
    return millis


def format_duration_ms(millis: int) -> str:
    """Flink's `formatWithHighestUnit`: the largest unit that divides exactly, e.g. 1_800_000 -> "30 min"."""
    if isinstance(millis, bool) or not isinstance(millis, int) or millis < 0:
        raise ValueError(f"duration must be a non-negative int of milliseconds, got {millis!r}")
    if millis == 0:
        return "0 ms"
    nanos = millis * _NANOS_PER_MS
    for per_unit, singular, _plural in _UNITS:
        if nanos % per_unit == 0:
            return f"{nanos // per_unit} {singular[0]}"
    raise AssertionError("unreachable: every millisecond count divides into milliseconds")


def duration_ms(value: int | str) -> int:
    """Accept either int millis or a Flink-style string (for configs and CLI flags)."""
    if isinstance(value, bool):
        raise ValueError(f"duration must be int millis or a string like '30 min', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must be >= 0 ms, got {value}")
        return value
    return parse_duration_ms(value)
