"""Orders the simulator's output by event time: a click is emitted only once the stream has reached
its event time, as a real click would arrive after the impressions shown before it."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from models.simulator.simulator import SimStep

Event = tuple[Literal["impression", "click"], dict[str, Any]]


def event_time_order(steps: Iterable[SimStep]) -> Iterator[Event]:
    """Impressions and clicks merged in non-decreasing event time (an impression's own clicks follow it)."""
    pending: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0
    for step in steps:
        t = int(step.impression["event_time"])
        while pending and pending[0][0] <= t:
            yield "click", heapq.heappop(pending)[2]
        yield "impression", step.impression
        for click in step.clicks:
            heapq.heappush(pending, (int(click["event_time"]), seq, click))
            seq += 1
    while pending:
        yield "click", heapq.heappop(pending)[2]
