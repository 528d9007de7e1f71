"""Reading an offset/time range of a topic and writing records back, with kafka-python or confluent-kafka.

Both clients yield the same `KafkaRecord`s in offset order per partition (committed records only), so
replay, export and the benchmark can swap them. Bad input (no broker, no topic, empty range) raises
KafkaIOError with one sentence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from operators.kafka_io.clients import (
    KafkaIOError,
    confluent_consumer,
    confluent_producer,
    consumer,
    port_answers,
    producer,
)
from schemas.event_time import event_time_of

Client = Literal["kafka-python", "confluent"]
CLIENTS: tuple[str, ...] = ("confluent", "kafka-python")


@dataclass(frozen=True)
class KafkaRecord:
    """One Kafka record as it is on the log (headers as (name, bytes) pairs)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class RecordRange:
    """Which records of a topic: offsets [from_offset, to_offset) per partition, and/or event times
    [from_time, to_time) in millis (the `event_time` field of impressions/clicks, the record timestamp
    of other topics). None = open end."""

    from_offset: int | None = None
    to_offset: int | None = None
    from_time: int | None = None
    to_time: int | None = None

    def __post_init__(self) -> None:
        for name in ("from_offset", "to_offset"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.from_offset is not None and self.to_offset is not None and self.from_offset >= self.to_offset:
            raise ValueError(f"the offset range [{self.from_offset}, {self.to_offset}) is empty: "
                             "--from-offset must be below --to-offset")
        if self.from_time is not None and self.to_time is not None and self.from_time >= self.to_time:
            raise ValueError(f"the time range [{self.from_time}, {self.to_time}) is empty: "
                             "--from-time must be before --to-time")

    def has_time(self) -> bool:
        return self.from_time is not None or self.to_time is not None

    def offsets(self, low: int, high: int) -> tuple[int, int]:
        """The offsets to read of a partition holding [low, high)."""
        start = low if self.from_offset is None else max(low, self.from_offset)
        end = high if self.to_offset is None else min(high, self.to_offset)
        return start, max(start, end)

    def keeps_time(self, t: int) -> bool:
        return (self.from_time is None or t >= self.from_time) and (self.to_time is None or t < self.to_time)


def record_time(record: KafkaRecord, schema_name: str | None) -> int:
    """Event time of a record: the Avro `event_time` of impressions/clicks, else the record timestamp."""
    if schema_name in ("Impression", "Click"):
        t = event_time_of(record.value)
        if t is not None:
            return t
    return record.timestamp


# ------------------------------------------------------------------------------------------------ checks
def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for part in bootstrap.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise KafkaIOError(f"bootstrap {bootstrap!r} is not host:port[,host:port]")
        out.append((host, int(port)))
    return out


def require_broker(bootstrap: str) -> None:
    """Fail with one sentence when no bootstrap address answers (kafka-python would retry for a minute)."""
    if not any(port_answers(h, p, timeout_s=2.0) for h, p in _hosts(bootstrap)):
        raise KafkaIOError(f"cannot reach the Kafka broker at {bootstrap}; is it running (`drnflow up`)?")


def list_topics(bootstrap: str) -> dict[str, int]:
    """Topic name -> partition count."""
    from kafka.errors import KafkaError

    require_broker(bootstrap)
    try:
        reader = consumer(bootstrap, "drnflow-tools", request_timeout_ms=10_000)
    except (KafkaError, OSError) as e:
        raise KafkaIOError(f"cannot talk to the Kafka broker at {bootstrap}: {e}") from None
    try:
        return {t: len(reader.partitions_for_topic(t) or ()) for t in reader.topics()}
    finally:
        reader.close()


def require_topics(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """Partition count of each topic; KafkaIOError naming the first missing one."""
    known = list_topics(bootstrap)
    for topic in topics:
        if topic not in known:
            raise KafkaIOError(f"topic {topic!r} does not exist on {bootstrap} (create it with `drnflow up "
                               f"--prefix ...`, or check the prefix)")
    return {t: known[t] for t in topics}


# ------------------------------------------------------------------------------------------------ reading
def read_partition(bootstrap: str, topic: str, partition: int, rng: RecordRange, schema_name: str | None,
                   client: Client = "kafka-python") -> Iterator[KafkaRecord]:
    """Committed records of one partition inside `rng`, in offset order; stops at the end it saw first."""
    reader = _read_confluent if client == "confluent" else _read_kafka_python
    for record in reader(bootstrap, topic, partition, rng):
        if rng.has_time() and not rng.keeps_time(record_time(record, schema_name)):
            continue
        yield record


def _read_kafka_python(bootstrap: str, topic: str, partition: int, rng: RecordRange) -> Iterator[KafkaRecord]:
    from kafka import TopicPartition

    reader = consumer(bootstrap, "drnflow-tools-read", max_poll_records=5000)
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        low = int(reader.beginning_offsets([tp])[tp])
        high = int(reader.end_offsets([tp])[tp])
        start, end = rng.offsets(low, high)
        if start >= end:
            return
        reader.seek(tp, start)
        idle_since = time.monotonic()
        while reader.position(tp) < end:
            batch = reader.poll(timeout_ms=500).get(tp, [])
            if not batch:
                if time.monotonic() - idle_since > 30:
                    raise KafkaIOError(f"{topic}[{partition}]: no records arrived for 30 s before offset {end}")
                continue
            idle_since = time.monotonic()
            for r in batch:
                if r.offset >= end:
                    return
                yield KafkaRecord(r.topic, r.partition, r.offset, int(r.timestamp), r.key, r.value,
                                  tuple((k, bytes(v)) for k, v in (r.headers or ())))
    finally:
        reader.close()


def _read_confluent(bootstrap: str, topic: str, partition: int, rng: RecordRange) -> Iterator[KafkaRecord]:
    from confluent_kafka import KafkaError, TopicPartition

    reader = confluent_consumer(bootstrap, "drnflow-tools-read", f"drnflow-tools-{uuid.uuid4().hex[:8]}",
                                  **{"enable.partition.eof": True, "queued.max.messages.kbytes": 256 * 1024})
    try:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        start, end = rng.offsets(int(low), int(high))
        if start >= end:
            return
        reader.assign([TopicPartition(topic, partition, start)])
        idle_since = time.monotonic()
        while True:
            batch = reader.consume(num_messages=5000, timeout=0.5)
            if not batch:
                if time.monotonic() - idle_since > 30:
                    raise KafkaIOError(f"{topic}[{partition}]: no records arrived for 30 s before offset {end}")
                continue
            idle_since = time.monotonic()
            for m in batch:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return  # read_committed: transaction markers may sit below `high`
                    raise KafkaIOError(f"reading {topic}[{partition}] failed: {err.str()}")
                offset = int(m.offset() or 0)
                if offset >= end:
                    return
                _, ts = m.timestamp()
                headers: Any = m.headers() or ()
                key: Any = m.key()
                value: Any = m.value()
                yield KafkaRecord(topic, partition, offset, int(ts), key, value,
                                  tuple((str(k), bytes(v)) for k, v in headers))
                if offset + 1 >= end:
                    return
    finally:
        reader.close()


def read_topic(bootstrap: str, topic: str, rng: RecordRange, schema_name: str | None,
               client: Client = "kafka-python") -> Iterator[KafkaRecord]:
    """All partitions one after the other (offset order within each)."""
    partitions = require_topics(bootstrap, [topic])[topic]
    for p in range(partitions):
        yield from read_partition(bootstrap, topic, p, rng, schema_name, client)


# ------------------------------------------------------------------------------------------------ writing
class RecordWriter:
    """Produces records with their key, partition, timestamp and headers kept; `close()` flushes."""

    def __init__(self, bootstrap: str, client: Client = "kafka-python") -> None:
        self.client = client
        self.sent = 0
        self._errors: list[str] = []
        if client == "confluent":
            self._producer: Any = confluent_producer(
                bootstrap, "drnflow-tools-write", **{"batch.size": 1024 * 1024, "queue.buffering.max.messages": 500_000}
            )
        else:
            self._producer = producer(bootstrap, "drnflow-tools-write", batch_size=512 * 1024)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None, timestamp: int,
             headers: Sequence[tuple[str, bytes]] = ()) -> None:
        if self.client == "confluent":
            kwargs: dict[str, Any] = {"key": key, "value": value, "timestamp": timestamp,
                                      "on_delivery": self._delivered}
            if partition is not None:
                kwargs["partition"] = partition
            if headers:
                kwargs["headers"] = list(headers)
            while True:
                try:
                    self._producer.produce(topic, **kwargs)
                    break
                except BufferError:
                    self._producer.poll(0.05)
            if self.sent % 1000 == 0:
                self._producer.poll(0)  # serve delivery callbacks now and then, not per record
        else:
            self._producer.send(topic, key=key, value=value, partition=partition, timestamp_ms=timestamp,
                                headers=list(headers) or None)
        self.sent += 1

    def close(self) -> None:
        if self.client == "confluent":
            left = self._producer.flush(60)
            if left:
                raise KafkaIOError(f"{left} records were not delivered within 60 s")
        else:
            self._producer.flush(timeout=60)
            self._producer.close()
        if self._errors:
            raise KafkaIOError(f"{len(self._errors)} records failed to be written, first: {self._errors[0]}")


def available_clients() -> list[str]:
    """kafka-python always; confluent-kafka when it is installed."""
    out = ["kafka-python"]
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return out
    return ["confluent", *out]


def pick_client(wanted: str | None) -> Client:
    """The requested client, or the fastest installed one."""
    have = available_clients()
    if wanted is None:
        return "confluent" if "confluent" in have else "kafka-python"
    if wanted not in have:
        raise KafkaIOError(f"client {wanted!r} is not installed (available: {', '.join(have)}); "
                           "pip install confluent-kafka to use it")
    return "confluent" if wanted == "confluent" else "kafka-python"
