"""What a prefix's topics hold: partitions, offsets or exact committed record counts, and event-time span."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from operators import kafka_io
from operators.kafka_io import PartitionSpan
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
    #: dead-letters only, when counted exactly: records per reason code
    reasons: dict[str, int] | None = None


def _time_of(logical: str, value: bytes | None, timestamp: int) -> int | None:
    if logical in EVENT_TIME_TOPICS:
        return event_time_of(value)
    return timestamp if timestamp >= 0 else None


def _reason_of(value: bytes | None) -> str:
    from schemas import serde

    try:
        return str(serde.decode("DeadLetter", value or b"")["reason"])
    except Exception:  # a record this reader cannot decode is counted, not fatal
        return "(undecodable)"


def _values(bootstrap: str, reader: Any, spans: list[PartitionSpan], exact: bool,
            timeout_s: float) -> Iterator[tuple[bytes | None, int]]:
    """(value, Kafka timestamp) of the spans' records: every record with librdkafka (for --exact; 2.4× the
    records/s of kafka-python in bench/bench_topic_read.py), a few samples with the open kafka-python reader."""
    if exact:
        yield from kafka_io.read_span_values(bootstrap, spans, timeout_s)
        return
    for span in spans:  # one at a time: read_span_records assigns (and so reads) only the spans it is given
        for r in kafka_io.read_span_records(reader, [span], timeout_s):
            yield r.value, int(r.timestamp)


def summarize(bootstrap: str, prefix: str, exact: bool = False, sample: int = 50,
              timeout_s: float = 60.0) -> list[TopicSummary]:
    """One summary per drnflow topic of `prefix`. Without `exact` the time span comes from the first and
    last `sample` records of each partition and the record of its largest timestamp (drnflow stamps
    records with their event time: the latest is then exact, the earliest a sample's); with it every
    committed record is read and counted."""
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
            spans = kafka_io.whole_topic(reader, name)
            offsets = sum(s.end - s.start for s in spans)
            read: list[PartitionSpan] = []
            newest_at = {} if exact else kafka_io.newest_timestamp_offsets(reader, name)
            for s in spans:
                if exact or s.end - s.start <= 2 * sample:
                    read.append(s)
                    continue
                read += [replace(s, end=s.start + sample), replace(s, start=s.end - sample)]
                at = newest_at.get(s.partition, (0, s.start))[1]
                if s.start + sample <= at < s.end - sample:  # the newest record lies between the samples
                    read.append(replace(s, start=at, end=at + 1))
            count, first, last = 0, None, None
            reasons: dict[str, int] | None = {} if exact and logical == "dead-letters" else None
            for value, timestamp in _values(bootstrap, reader, read, exact, timeout_s):
                count += 1
                if reasons is not None:
                    reason = _reason_of(value)
                    reasons[reason] = reasons.get(reason, 0) + 1
                t = _time_of(logical, value, timestamp)
                if t is not None:
                    first = t if first is None else min(first, t)
                    last = t if last is None else max(last, t)
            out.append(TopicSummary(logical, name, True, len(spans), offsets, count if exact else None, first,
                                    last, None if reasons is None else dict(sorted(reasons.items()))))
    finally:
        reader.close()
    return out


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """The current end offset of every partition of those of `topics` that exist."""
    known = kafka_io.list_topics(bootstrap)
    reader = kafka_io.consumer(bootstrap, "drnflow-topics")
    try:
        return {(s.topic, s.partition): s.end for t in topics if t in known for s in kafka_io.whole_topic(reader, t)}
    finally:
        reader.close()


def committed_since(bootstrap: str, since: dict[tuple[str, int], int], timeout_s: float = 60.0) -> dict[str, int]:
    """Committed records per topic written after the offsets `since` (from end_offsets)."""
    topics = sorted({t for t, _ in since})
    counts = dict.fromkeys(topics, 0)
    known = kafka_io.list_topics(bootstrap)
    reader = kafka_io.consumer(bootstrap, "drnflow-topics")
    try:
        spans = [replace(s, start=since.get((s.topic, s.partition), 0))
                 for t in topics if t in known for s in kafka_io.whole_topic(reader, t)]
        for topic, _, _, _ in kafka_io.read_spans(reader, spans, timeout_s):
            counts[topic] += 1
    finally:
        reader.close()
    return counts
