"""Follows the model-weights topic and hands the latest version per model_id to a callback (typically
Ranker.apply_weights), and a MAJOR's parent just before it when the same batch holds both, so a restarted
ranker holds the parent of a MAJOR on probation.

"Latest" is topic order (the last record read for a model_id), not the largest version number: the
topic is the single source of truth, and a ROLLBACK is a newer record even when it republishes an
older version. Records of one model_id share a key, hence a partition, hence an order.

The Kafka loop is a thin shell around `WeightsHandler.handle_batch` (pure, unit-tested); it polls
with a short timeout so a new version reaches the callback well within a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from operators.model_weights_log import WeightsLog
from schemas.serde import SerdeError, decode

log = logging.getLogger(__name__)

WeightsCallback = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class RejectedWeights:
    """A model-weights message that was not handed on, and why."""

    model_id: str | None
    version: int | None
    reason: str


@dataclass
class WeightsHandler:
    """Decodes a batch of model-weights values, keeps the last record per followed model_id and hands
    each to `on_weights`. A bad record (undecodable, or refused by the callback) is logged and
    reported, never raised: the ranker keeps serving the version it has."""

    on_weights: WeightsCallback
    model_ids: Collection[str] | None = None
    handed: dict[str, int] = field(default_factory=dict)  # model_id -> last version handed on
    rejected: list[RejectedWeights] = field(default_factory=list)

    def handle_batch(self, values: Iterable[bytes]) -> list[dict[str, Any]]:
        """Handle one poll's values in topic order; returns the records handed to the callback."""
        latest: dict[str, dict[str, Any]] = {}
        #: The batch as the job reads the topic (WeightsLog): which latest MAJOR has its parent just before it.
        seen = WeightsLog()
        for value in values:
            try:
                record = decode("ModelWeights", value)
            except SerdeError as e:
                self._reject(None, None, f"undecodable: {e}")
                continue
            model_id = str(record["model_id"])
            if self.model_ids is not None and model_id not in self.model_ids:
                continue
            latest.pop(model_id, None)  # keep insertion order = order of the latest record
            latest[model_id] = record
            seen.add(record)
        handed: list[dict[str, Any]] = []
        for model_id, record in latest.items():
            parent = self._parent_first(model_id, record, seen)
            if parent is not None:
                self._hand(model_id, parent, handed)
            self._hand(model_id, record, handed)
        return handed

    def _parent_first(self, model_id: str, record: Mapping[str, Any], seen: WeightsLog) -> dict[str, Any] | None:
        """The parent of a MAJOR that is the batch's last record, by the job's rule (the record just before it,
        of its parent_version), unless it is what was last handed on: a follower that starts on the topic (a
        restarted ranker) must serve the parent before the MAJOR to hold it, as a MAJOR on probation is tried
        against it (models/probation.py)."""
        major = seen.latest_major.get(model_id)
        if record.get("kind") != "MAJOR" or major is None or int(major["version"]) != int(record["version"]):
            return None
        parent = seen.major_parent.get(model_id)
        if parent is None or self.handed.get(model_id) == int(parent["version"]):
            return None
        return parent

    def _hand(self, model_id: str, record: dict[str, Any], handed: list[dict[str, Any]]) -> None:
        try:
            self.on_weights(record)
        except Exception as e:  # the callback validates; any refusal must not kill the follower
            reason = f"refused by callback: {type(e).__name__}: {e}"
            self._reject(model_id, int(record["version"]), reason)
            return
        self.handed[model_id] = int(record["version"])
        handed.append(record)

    def _reject(self, model_id: str | None, version: int | None, reason: str) -> None:
        log.warning("model-weights record skipped (model_id=%s, version=%s): %s", model_id, version, reason)
        self.rejected.append(RejectedWeights(model_id, version, reason))


class _Consumer(Protocol):
    def poll(self, timeout_ms: int = ..., max_records: int | None = ...) -> Mapping[Any, list[Any]]: ...

    def close(self) -> None: ...


def make_consumer(bootstrap_servers: str, topic: str) -> _Consumer:
    """A KafkaConsumer reading the whole topic from the beginning, committed records only, no group
    (every follower reads everything and commits nothing)."""
    from operators import kafka_io

    consumer: _Consumer = kafka_io.consumer(
        bootstrap_servers, "drnflow-weights-follower", topic, auto_offset_reset="earliest", fetch_max_wait_ms=100,
        max_partition_fetch_bytes=64 * 1024 * 1024,
    )
    return consumer


class WeightsFollower:
    """Background thread: poll model-weights, pass each batch to a WeightsHandler. `stop()` joins it."""

    def __init__(
        self,
        handler: WeightsHandler,
        consumer_factory: Callable[[], _Consumer],
        poll_timeout_ms: int = 100,
        name: str = "weights-follower",
    ) -> None:
        if poll_timeout_ms < 1:
            raise ValueError(f"poll_timeout_ms must be >= 1, got {poll_timeout_ms}")
        self.handler = handler
        self._consumer_factory = consumer_factory
        self._poll_timeout_ms = poll_timeout_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    @classmethod
    def for_kafka(
        cls,
        bootstrap_servers: str,
        on_weights: WeightsCallback,
        topic: str = "model-weights",
        model_ids: Collection[str] | None = None,
        poll_timeout_ms: int = 100,
    ) -> WeightsFollower:
        return cls(
            WeightsHandler(on_weights, model_ids),
            lambda: make_consumer(bootstrap_servers, topic),
            poll_timeout_ms=poll_timeout_ms,
        )

    def start(self) -> WeightsFollower:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            consumer = self._consumer_factory()
        except BaseException as e:
            self.error = e
            log.exception("weights follower could not start its consumer")
            return
        try:
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=self._poll_timeout_ms)
                # one model_id = one key = one partition, so per-partition order is all that matters
                values = [m.value for msgs in batch.values() for m in msgs]
                if values:
                    self.handler.handle_batch(values)
        except BaseException as e:
            self.error = e
            log.exception("weights follower stopped on an error")
        finally:
            consumer.close()
