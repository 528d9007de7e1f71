"""What a prefix's topics hold: partitions, offsets or exact committed record counts, and event-time span."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from operators import kafka_io
from schemas.event_time import event_time_of
from schemas.topics import TOPIC_SCHEMAS, TopicNames

#: Topics whose records carry an Avro event_time (the others are stamped with their Kafka timestamp).
EVENT_TIME_TOPICS = ("impressions", "clicks")


@dataclass(frozen=True)
class TopicSummary:
    logical: str
    name: str
    exists: bool
    partitions: int = 0
    offsets: int = 0  # end - start over the partitions (transaction markers included)
    records: int | None = None  # committed records, when counted exactly
    first_ms: int | None = None  # earliest event time (or Kafka timestamp) seen
    last_ms: int | None = None  # latest


def _time_of(logical: str, value: bytes | None, timestamp: int) -> int | None:
    if logical in EVENT_TIME_TOPICS:
        return event_time_of(value)
    return timestamp if timestamp >= 0 else None


def summarize(bootstrap: str, prefix: str, exact: bool = False, sample: int = 50,
              timeout_s: float = 60.0) -> list[TopicSummary]:
    """One summary per drnflow topic of `prefix`. Without `exact` the time span comes from the first and
    last `sample` records of each partition; with it every committed record is read and counted."""
    from kafka import TopicPartition

    names = TopicNames(prefix)
    known = kafka_io.list_topics(bootstrap)
    out = []
    reader = kafka_io.consumer(bootstrap, "drnflow-topics")
    try:
        for logical in TOPIC_SCHEMAS:
            name = names.name(logical)
            if name not in known:
                out.append(TopicSummary(logical, name, exists=False))
                continue
            tps = [TopicPartition(name, p) for p in range(known[name])]
            begins, ends = reader.beginning_offsets(tps), reader.end_offsets(tps)
            offsets = sum(int(ends[tp]) - int(begins[tp]) for tp in tps)
            windows: list[tuple[Any, int, int]] = []
            for tp in tps:
                lo, hi = int(begins[tp]), int(ends[tp])
                if exact or hi - lo <= 2 * sample:
                    windows.append((tp, lo, hi))
                else:
                    windows += [(tp, lo, lo + sample), (tp, hi - sample, hi)]
            count, first, last = 0, None, None
            for tp, lo, hi in windows:
                for value, timestamp in _read(reader, tp, lo, hi, timeout_s):
                    count += 1
                    t = _time_of(logical, value, timestamp)
                    if t is not None:
                        first = t if first is None else min(first, t)
                        last = t if last is None else max(last, t)
            out.append(TopicSummary(logical, name, True, len(tps), offsets, count if exact else None, first, last))
    finally:
        reader.close()
    return out


def _read(reader: Any, tp: Any, lo: int, hi: int, timeout_s: float) -> list[tuple[bytes | None, int]]:
    """(value, timestamp) of the committed records of one partition in offsets [lo, hi)."""
    if hi <= lo:
        return []
    reader.assign([tp])
    reader.seek(tp, lo)
    got: list[tuple[bytes | None, int]] = []
    deadline = time.monotonic() + timeout_s
    while reader.position(tp) < hi:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {tp.topic}[{tp.partition}] took longer than {timeout_s:g} s")
        for records in reader.poll(timeout_ms=300).values():
            got += [(r.value, int(r.timestamp)) for r in records if r.offset < hi]
    return got


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The current end offset of every partition of `topics`."""
    from kafka import TopicPartition

    known = kafka_io.list_topics(bootstrap)
    tps = [TopicPartition(t, p) for t in topics for p in range(known.get(t, 0))]
    reader = kafka_io.consumer(bootstrap, "drnflow-topics")
    try:
        return {(tp.topic, tp.partition): int(o) for tp, o in reader.end_offsets(tps).items()} if tps else {}
    finally:
        reader.close()


def committed_since(bootstrap: str, since: dict[tuple[str, int], int], timeout_s: float = 60.0) -> dict[str, int]:
    """Committed records per topic written after the offsets `since` (from end_offsets)."""
    from kafka import TopicPartition

    now = end_offsets(bootstrap, sorted({t for t, _ in since}))
    counts = {t: 0 for t, _ in since}
    reader = kafka_io.consumer(bootstrap, "drnflow-topics")
    try:
        for (topic, partition), end in now.items():
            counts[topic] += len(_read(reader, TopicPartition(topic, partition), since.get((topic, partition), 0),
                                       end, timeout_s))
    finally:
        reader.close()
    return counts
