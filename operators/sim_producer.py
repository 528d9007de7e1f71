"""The one simulator -> Kafka producer: impressions and clicks in event-time order, keyed by request_id,
each with its event time as the Kafka timestamp (what the major update's `offsets_for_times` relies on).

`drnflow simulate` and the demo both write through `produce_steps`; what differs between them (pacing,
back-pressure on the learner, per-window bookkeeping) is their `before_send` hook.

The producer is librdkafka's (confluent-kafka), idempotent (so batching and retries never reorder a
partition), with the Java client's murmur2 partitioner: a key lands on the partition kafka-python's
and the JVM's producers chose for it, so the records per partition are those the kafka-python
producer wrote before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka.errors import InvalidTimestampError, KafkaError, KafkaTimeoutError, for_code

from models.simulator.stream import event_time_order
from operators.kafka_io.clients import MAX_FETCH_BYTES, confluent_producer
from schemas.fast_encode import encode_click, encode_impression
from schemas.topics import TopicNames

#: (kind "impression" | "click", record) -> None, called before each record is sent.
BeforeSend = Callable[[str, dict[str, Any]], None]

#: librdkafka settings of the event producer: large batches, a short linger, a deep local queue.
PRODUCER_SETTINGS: dict[str, Any] = {
    "partitioner": "murmur2_random",  # the Java client's (and kafka-python's) key -> partition mapping
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.max.bytes": MAX_FETCH_BYTES,
}


#: librdkafka's error codes that need a word: a record the broker refused (KIP-467 per-record errors: the
#: broker answers INVALID_RECORD, not INVALID_TIMESTAMP, to librdkafka), and a valid record failed with it.
INVALID_RECORD = 87
INVALID_DIFFERENT_RECORD = -138
#: A refused record this far (ms) ahead of this machine's clock was refused for its timestamp: the broker's
#: default message.timestamp.after.max.ms is 1 h.
FUTURE_TIMESTAMP_MS = 3_600_000


def delivery_error(err: Any, timestamp_ms: int | None = None, now_ms: int | None = None) -> KafkaError:
    """A librdkafka delivery error as the kafka-python KafkaError subclass of its broker error code, so callers
    catch one exception family. An INVALID_RECORD whose timestamp is more than an hour ahead of the clock
    (`now_ms`, default this machine's) is the InvalidTimestampError kafka-python raised for it: librdkafka
    hears the broker's per-record error as INVALID_RECORD and drops its reason."""
    code = int(err.code())
    text = f"{err.name()}: {err.str()}"
    if code == INVALID_RECORD and timestamp_ms is not None:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if timestamp_ms - now > FUTURE_TIMESTAMP_MS:
            ahead_h = (timestamp_ms - now) / 3.6e6
            return InvalidTimestampError(f"{text}: its timestamp {timestamp_ms} is {ahead_h:.1f} h ahead of this "
                                         "machine's clock")
    error_type = for_code(code) if code > 0 else KafkaError
    return error_type(text)


class EventWriter:
    """A producer for the impressions and clicks topics; `counts` says what was sent."""

    def __init__(self, bootstrap: str, topics: TopicNames, client_id: str = "drnflow-simulate",
                 **settings: Any) -> None:
        self.topics = topics
        self.counts = {"impression": 0, "click": 0}
        self._producer = confluent_producer(bootstrap, client_id, **{**PRODUCER_SETTINGS, **settings})
        #: Errors the broker answered (e.g. a timestamp it refuses): the first is raised, never swallowed.
        self.errors: list[Exception] = []
        #: Valid records failed with an invalid one of their batch: raised only when nothing else was.
        self._batch_errors: list[Exception] = []
        self._topic = {"impression": topics.impressions, "click": topics.clicks}
        self._unpolled = 0

    def _delivered(self, err: Any, timestamp_ms: int) -> None:
        if err is None:
            return
        error = delivery_error(err, timestamp_ms)  # (a failed message's own timestamp() is not available)
        if int(err.code()) == INVALID_DIFFERENT_RECORD:
            self._batch_errors.append(error)  # the reason is the other record's error: that one is raised
        else:
            self.errors.append(error)

    def send(self, kind: str, record: dict[str, Any]) -> None:
        value = encode_impression(record) if kind == "impression" else encode_click(record)
        self.send_raw(kind, str(record["request_id"]).encode(), value, int(record["event_time"]))

    def send_raw(self, kind: str, key: bytes | None, value: bytes, timestamp_ms: int) -> None:
        """Send one already encoded record of `kind`: its key, Avro value and Kafka timestamp (event time)."""
        if self.errors or self._batch_errors:
            self.raise_first_error()
        topic = self._topic[kind]
        while True:
            try:
                self._producer.produce(topic, value, key, timestamp=timestamp_ms,
                                       on_delivery=lambda err, _msg, t=timestamp_ms: self._delivered(err, t))
                break
            except BufferError:  # the local queue is full: let librdkafka send, then try again
                self._producer.poll(0.05)
                self.raise_first_error()  # (a broker gone: its timed-out records are said, not waited on)
        self.counts[kind] += 1
        self._unpolled += 1
        if self._unpolled >= 1000:  # serve delivery callbacks now and then, not per record
            self._producer.poll(0)
            self._unpolled = 0

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self._producer.flush(timeout_s)
        self.raise_first_error()
        if left:
            raise KafkaTimeoutError(f"{left} records not delivered within {timeout_s:g} s")

    def raise_first_error(self) -> None:
        """Raise the first error the broker answered for a sent record (a KafkaError)."""
        if self.errors:
            raise self.errors[0]
        if self._batch_errors:
            raise self._batch_errors[0]

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then drop what is left (a broker gone, a run stopped by
        an error), so the producer's teardown never waits out librdkafka's 5-minute message timeout."""
        if self._producer.flush(timeout_s):
            self._producer.purge()
            self._producer.poll(0)


def produce_steps(steps: Iterable[Any], writer: EventWriter, before_send: BeforeSend | None = None) -> None:
    """Send every impression and click of the simulator steps in event-time order, then flush."""
    for kind, record in event_time_order(steps):
        if before_send is not None:
            before_send(kind, record)
        writer.send(kind, record)
    writer.flush()
