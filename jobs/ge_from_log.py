"""GE on Kafka (issue 17): read a logged range of the DRN traffic as GE training data, and publish a trained
generator as a MAJOR on model-weights behind a gate.

The range is read as the major update reads it (jobs/major_update.read_range: impressions of one model by
event time, their clicks up to an attribution window later); the ranker score of each logged item is the Q
of the DRN version that served it, rebuilt from that version's record on model-weights
(models/ge/from_log.py). The generator is published under its own model_id with the next free version;
the live re-ranker (`simulate --reranker`) serves it and the minor-update job tunes it by DBGD, the path a
seeded generator already takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from jobs.major_update import read_range
from models.drn import DrnScorer
from models.ge.catalog_movielens import MovieLensCategories
from models.ge.from_log import FromLog, logged_lists
from models.ge.pointer_generator import PointerGenerator
from models.weights import parse_model_weights_record
from operators import kafka_io
from operators.model_weights_log import read_model_weights
from operators.reranker import generator_record
from schemas import serde
from schemas.topics import TopicNames


@dataclass(frozen=True)
class LogSource:
    """Which logged traffic GE learns from: the DRN model's impressions with event_time in [start, end)."""

    bootstrap: str
    prefix: str
    model_id: str
    start_ms: int
    end_ms: int
    attribution_window_ms: int = 30 * 60_000

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"--to ({self.end_ms}) must be after --from ({self.start_ms})")
        TopicNames(self.prefix)

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)


class VersionScores:
    """Q of any DRN version on model-weights, one numpy scorer per version built on first use."""

    def __init__(self, records: Mapping[int, Mapping[str, Any]]) -> None:
        self._records = dict(records)
        self._scorers: dict[int, DrnScorer] = {}

    def __call__(self, version: int, state: npt.NDArray[np.float32],
                 actions: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if version not in self._scorers:
            self._scorers[version] = DrnScorer(*parse_model_weights_record(self._records[version]))  # KeyError
        q: npt.NDArray[np.float32] = self._scorers[version].q(state, actions)
        return q


def model_records(bootstrap: str, topic: str, model_id: str) -> dict[int, dict[str, Any]]:
    """version -> the (last) record of each version of `model_id` on model-weights."""
    records, _ = read_model_weights(bootstrap, topic, "drnflow-ge-weights")
    return {int(r["version"]): r for r in records if r["model_id"] == model_id}


def read_logged(source: LogSource, timeout_s: float = 120.0) -> tuple[FromLog, dict[str, Any]]:
    """The range's logged lists and what was read (records, corrupt ones, seconds)."""
    topics = source.topics
    kafka_io.require_topics(source.bootstrap, [topics.impressions, topics.clicks, topics.model_weights])
    rng = read_range(source.bootstrap, topics, source.model_id, source.start_ms, source.end_ms,
                     attribution_window_ms=source.attribution_window_ms, timeout_s=timeout_s)
    if not rng.impressions:
        raise ValueError(f"no logged impression of model {source.model_id!r} in [{_iso(source.start_ms)}, "
                         f"{_iso(source.end_ms)}) on {topics.impressions}: nothing to train on")
    scores = VersionScores(model_records(source.bootstrap, topics.model_weights, source.model_id))
    data = logged_lists(rng.impressions, rng.clicks, scores, MovieLensCategories(), source.attribution_window_ms)
    return data, {"impressions": len(rng.impressions), "clicks": len(rng.clicks), "corrupt": len(rng.corrupt),
                  "read": {k: v for k, v in rng.read_stats.items() if k in ("records", "seconds")}}


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def publish_generator(bootstrap: str, topic: str, model_id: str, generator: PointerGenerator,
                      created_at: int) -> dict[str, Any]:
    """The trained generator as a MAJOR of `model_id` with the next free version, published; its record."""
    versions = model_records(bootstrap, topic, model_id)
    record = generator_record(model_id, generator, max(versions, default=0) + 1, created_at)
    producer = kafka_io.producer(bootstrap, "drnflow-ge-publish", linger_ms=0)
    try:
        producer.send(topic, key=model_id.encode(), value=serde.encode("ModelWeights", record)).get(timeout=60)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return record
