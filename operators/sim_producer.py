"""The one simulator -> Kafka producer: impressions and clicks in event-time order, keyed by request_id,
each with its event time as the Kafka timestamp (what the major update's `offsets_for_times` relies on).

`drnflow simulate` and the demo both write through `produce_steps`; what differs between them (pacing,
back-pressure on the learner, per-window bookkeeping) is their `before_send` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from models.simulator.stream import event_time_order
from operators import kafka_io
from schemas import serde
from schemas.topics import TopicNames

#: (kind "impression" | "click", record) -> None, called before each record is sent.
BeforeSend = Callable[[str, dict[str, Any]], None]


class EventWriter:
    """A producer for the impressions and clicks topics; `counts` says what was sent."""

    def __init__(self, bootstrap: str, topics: TopicNames, client_id: str = "drnflow-simulate") -> None:
        self.topics = topics
        self.counts = {"impression": 0, "click": 0}
        self._producer = kafka_io.producer(bootstrap, client_id)
        #: Errors the broker answered (e.g. a timestamp it refuses): the first is raised, never swallowed.
        self.errors: list[Exception] = []

    def send(self, kind: str, record: dict[str, Any]) -> None:
        topic, schema = (
            (self.topics.impressions, "Impression") if kind == "impression" else (self.topics.clicks, "Click")
        )
        self.raise_first_error()
        future = self._producer.send(topic, key=str(record["request_id"]).encode(),
                                     value=serde.encode(schema, record, check=False),
                                     timestamp_ms=int(record["event_time"]))
        future.add_errback(self.errors.append)
        self.counts[kind] += 1

    def flush(self, timeout_s: float = 60.0) -> None:
        self._producer.flush(timeout=timeout_s)
        self.raise_first_error()

    def raise_first_error(self) -> None:
        """Raise the first error the broker answered for a sent record (a KafkaError)."""
        if self.errors:
            raise self.errors[0]

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.close(timeout=timeout_s)


def produce_steps(steps: Iterable[Any], writer: EventWriter, before_send: BeforeSend | None = None) -> None:
    """Send every impression and click of the simulator steps in event-time order, then flush."""
    for kind, record in event_time_order(steps):
        if before_send is not None:
            before_send(kind, record)
        writer.send(kind, record)
    writer.flush()
