"""Offset spans of a topic and reading them: "from here to there" and "from the beginning to the end".

The major update reads the log of a time range; the jobs read model-weights to its end before they
start. Both read committed records only, in offset order per partition, and stop at the end offsets
they saw first, so a writer that keeps writing cannot keep them reading.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from operators.kafka_io.clients import KafkaIOError, confluent_consumer, consumer
from schemas.records import MAX_EVENT_TIME_MS


@dataclass(frozen=True)
class PartitionSpan:
    topic: str
    partition: int
    start: int  # inclusive offset
    end: int  # exclusive offset


def _partitions(reader: Any, topic: str) -> list[Any]:
    from kafka import TopicPartition

    parts = reader.partitions_for_topic(topic)
    if not parts:
        raise KafkaIOError(f"topic {topic!r} does not exist; create the topics first (drnflow up)")
    return [TopicPartition(topic, p) for p in sorted(parts)]


def whole_topic(reader: Any, topic: str) -> list[PartitionSpan]:
    """Every partition of `topic` from its first offset to its current end."""
    tps = _partitions(reader, topic)
    begins, ends = reader.beginning_offsets(tps), reader.end_offsets(tps)
    return [PartitionSpan(topic, tp.partition, int(begins[tp]), int(ends[tp])) for tp in tps]


def spans_by_time(reader: Any, topic: str, start_ms: int, end_ms: int) -> list[PartitionSpan]:
    """Offsets of every partition of `topic` holding Kafka timestamps in [start_ms, end_ms)."""
    tps = _partitions(reader, topic)
    ends = reader.end_offsets(tps)
    begins = reader.beginning_offsets(tps)
    lo = reader.offsets_for_times({tp: max(0, int(start_ms)) for tp in tps})
    hi = reader.offsets_for_times({tp: max(0, int(end_ms)) for tp in tps})
    out = []
    for tp in tps:
        s = lo[tp].offset if lo.get(tp) is not None else ends[tp]
        e = hi[tp].offset if hi.get(tp) is not None else ends[tp]
        out.append(PartitionSpan(topic, tp.partition, max(int(s), int(begins[tp])), int(e)))
    return out


def newest_timestamp_offsets(reader: Any, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition of `topic`: (largest record timestamp, the first offset holding it), exactly and without
    reading the partition: `offsets_for_times(T)` answers from the broker's time index whether any record
    has a timestamp >= T, so a binary search over T finds the largest. Partitions without a timestamped
    record are left out. drnflow's writers stamp impressions and clicks with their event time."""
    tps = _partitions(reader, topic)
    found = {tp: hit for tp, hit in reader.offsets_for_times({tp: 0 for tp in tps}).items() if hit is not None}
    lo = dict.fromkeys(found, 0)  # lo[tp]: a timestamp some record reaches; hi[tp]: one none reaches
    hi = dict.fromkeys(found, MAX_EVENT_TIME_MS + 1)  # no drnflow record is stamped at or after 2100
    while any(hi[tp] - lo[tp] > 1 for tp in found):
        probe = {tp: (lo[tp] + hi[tp]) // 2 for tp in found if hi[tp] - lo[tp] > 1}
        for tp, hit in reader.offsets_for_times(probe).items():
            if hit is None:
                hi[tp] = probe[tp]
            else:
                lo[tp], found[tp] = probe[tp], hit
    return {tp.partition: (int(found[tp].timestamp), int(found[tp].offset)) for tp in found}


class ReadStalled(KafkaIOError, TimeoutError):
    """No record of a range came for `timeout_s` while some were still to be read: one sentence (a
    KafkaIOError), and a TimeoutError for callers that wait and try again."""


def read_spans(reader: Any, spans: Sequence[PartitionSpan], timeout_s: float = 120.0
               ) -> Iterator[tuple[str, int, int, bytes | None]]:
    """(topic, partition, offset, value) of every committed record of the spans; ReadStalled when no record
    comes for `timeout_s` before they are all read."""
    for r in read_span_records(reader, spans, timeout_s):
        yield r.topic, r.partition, r.offset, r.value


def read_span_records(reader: Any, spans: Sequence[PartitionSpan], timeout_s: float = 120.0) -> Iterator[Any]:
    """The client's records (value, key, timestamp, ...) of every committed record of the spans. `timeout_s`
    bounds a stall, not the whole read: a large range on a busy broker takes as long as it takes, as long as
    records keep coming (a soak's 300k impressions took longer than 60 s under load)."""
    from kafka import TopicPartition

    todo = {TopicPartition(s.topic, s.partition): s for s in spans if s.end > s.start}
    if not todo:
        return
    reader.assign(list(todo))
    reader.resume(*todo)  # a span read before on this reader left its partition paused
    for tp, s in todo.items():
        reader.seek(tp, s.start)
    deadline = time.monotonic() + timeout_s
    seen: dict[Any, int] = {}
    while todo:
        if time.monotonic() > deadline:
            left = ", ".join(f"{tp.topic}[{tp.partition}]@{reader.position(tp)}<{s.end}" for tp, s in todo.items())
            raise ReadStalled(f"no record of the range came for {timeout_s:.0f} s ({left}); is the broker up?")
        for tp, records in reader.poll(timeout_ms=500, max_records=5000).items():
            span = todo.get(tp)
            if span is None:
                continue
            for r in records:
                if r.offset < span.end:
                    yield r
        positions = {tp: reader.position(tp) for tp in todo}
        if positions != seen:  # records, or aborted transactions' markers, were read: no stall
            seen = positions
            deadline = time.monotonic() + timeout_s
        for tp, at in positions.items():
            if at >= todo[tp].end:
                todo.pop(tp)
                reader.pause(tp)


def read_span_values(bootstrap: str, spans: Sequence[PartitionSpan], timeout_s: float = 120.0
                     ) -> Iterator[tuple[bytes | None, int]]:
    """(value, Kafka timestamp) of every committed record of the spans, read with librdkafka: 2.4× the records/s
    of kafka-python (bench/bench_topic_read.py), for reads of every record (`drnflow topics --exact`). A
    partition is done at the end of its log (librdkafka's partition EOF) or at a record past its span, whichever
    comes first, so a trailing transaction marker ends it too and a live writer cannot keep it reading.
    ReadStalled as read_span_records."""
    import uuid

    from confluent_kafka import KafkaError, TopicPartition

    todo = {(s.topic, s.partition): s for s in spans if s.end > s.start}
    if not todo:
        return
    # librdkafka needs a group id even to assign; a fresh one commits nothing (auto commit is off).
    reader = confluent_consumer(bootstrap, "drnflow-read-spans", f"drnflow-read-spans-{uuid.uuid4().hex}",
                                **{"enable.partition.eof": True})
    try:
        reader.assign([TopicPartition(t, p, s.start) for (t, p), s in todo.items()])
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                left = ", ".join(f"{t}[{p}] up to {s.end}" for (t, p), s in todo.items())
                raise ReadStalled(f"no record of the range came for {timeout_s:.0f} s ({left}); is the broker up?")
            for m in reader.consume(num_messages=10_000, timeout=0.5):
                deadline = time.monotonic() + timeout_s
                key = (m.topic(), m.partition())
                span = todo.get(key)
                if span is None:
                    continue
                error = m.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaIOError(f"reading {key[0]}[{key[1]}]: {error.str()}")
                    done = True
                else:
                    if m.offset() < span.end:
                        yield m.value(), m.timestamp()[1]
                    done = m.offset() >= span.end - 1
                if done:
                    todo.pop(key)
                    reader.pause([TopicPartition(*key)])
    finally:
        reader.close()


@dataclass
class TopicLog:
    """A topic read from its beginning to the end it had: the end offset per partition, and the records
    as they are read (one pass; the client closes when it is exhausted)."""

    records: Iterator[tuple[int, int, bytes | None]]  # (partition, offset, value)
    end_offsets: dict[int, int]


def read_to_end(bootstrap: str, topic: str, client_id: str, timeout_s: float = 60.0) -> TopicLog:
    """Every committed record of `topic` up to its end offsets at the call (a live writer cannot keep it
    reading), streamed rather than held: model-weights holds megabytes per version. KafkaIOError when the
    topic does not exist, TimeoutError when it cannot be read in time."""
    reader = consumer(bootstrap, client_id)
    try:
        spans = whole_topic(reader, topic)
    except BaseException:
        reader.close()
        raise

    def records() -> Iterator[tuple[int, int, bytes | None]]:
        try:
            for _, partition, offset, value in read_spans(reader, spans, timeout_s):
                yield partition, offset, value
        finally:
            reader.close()

    return TopicLog(records(), {s.partition: s.end for s in spans})
