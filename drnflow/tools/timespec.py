"""Points in time on the command line: epoch milliseconds or ISO-8601 (UTC unless an offset is given)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time_ms(text: str) -> int:
    """`1700000000000`, `2023-11-14T22:13:20Z`, `2023-11-14 22:13:20+01:00` or `2023-11-14` -> epoch millis."""
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} is neither epoch milliseconds nor ISO-8601 "
                         "(e.g. 2023-11-14T22:13:20Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def format_time_ms(millis: int) -> str:
    """Epoch millis as ISO-8601 UTC with milliseconds, e.g. 2023-11-14T22:13:20.000Z."""
    return datetime.fromtimestamp(millis / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
