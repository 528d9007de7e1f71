"""What the model-weights topic holds, read to its end once: the minor-update job's start (WeightsLog)
and the major update's view of one model (WeightsView) come from the same read."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from operators.kafka_io import read_to_end
from schemas import serde

log = logging.getLogger(__name__)


def read_model_weights(
    bootstrap: str, topic: str, client_id: str, timeout_s: float = 60.0
) -> tuple[Iterator[dict[str, Any]], dict[int, int]]:
    """The decodable ModelWeights records of `topic` in partition, offset order (an undecodable one is
    logged and skipped: a corrupt version must not stop a reader), and the end offset per partition."""
    topic_log = read_to_end(bootstrap, topic, client_id, timeout_s)

    def records() -> Iterator[dict[str, Any]]:
        for partition, offset, value in topic_log.records:
            try:
                yield serde.decode("ModelWeights", value or b"")
            except serde.SerdeError as e:
                log.warning("%s[%d]@%d: skipping undecodable ModelWeights: %s", topic, partition, offset, e)

    return records(), topic_log.end_offsets


@dataclass
class WeightsLog:
    """What the model-weights topic held when the job was built: the latest MAJOR per model (the
    starting weights), the highest version per model (new versions must not reuse a number) and the
    end offset per partition (the live model-weights source starts there)."""

    latest_major: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_version: dict[str, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    #: The last record per model in topic order: the version being served.
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The parent of each latest MAJOR when it was the record just before it (models/probation.py: a MAJOR on
    #: probation is judged against it, and a job starting on that MAJOR needs its weights).
    major_parent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        model_id, version = str(record["model_id"]), int(record["version"])
        self.max_version[model_id] = max(self.max_version.get(model_id, -1), version)
        before = self.latest.get(model_id)
        self.latest[model_id] = dict(record)
        if record["kind"] == "MAJOR":
            held = self.latest_major.get(model_id)
            if held is None or version > int(held["version"]):
                self.latest_major[model_id] = dict(record)
                self.major_parent.pop(model_id, None)
                if before is not None and int(before["version"]) == record.get("parent_version"):
                    self.major_parent[model_id] = before


def read_weights_log(bootstrap: str, topic: str, timeout_s: float = 30.0) -> WeightsLog:
    """Read the model-weights topic from the beginning to its current end (committed records only)."""
    records, ends = read_model_weights(bootstrap, topic, "drnflow-minor-update-weights-log", timeout_s)
    out = WeightsLog(end_offsets=ends)
    for record in records:
        out.add(record)
    return out


@dataclass
class WeightsView:
    """What model-weights holds for one model: the highest version, the last record (topic order),
    the record of a wanted version and the checksums of its MAJOR versions."""

    max_version: int = -1
    latest: dict[str, Any] | None = None
    wanted: dict[str, Any] | None = None
    major_checksums: dict[str, int] = field(default_factory=dict)
    versions_seen: dict[int, int] = field(default_factory=dict)  # version -> records with it


def read_weights(bootstrap: str, topic: str, model_id: str, want_version: int | None = None,
                 timeout_s: float = 60.0) -> WeightsView:
    """Read model-weights from the beginning to its current end for `model_id`."""
    view = WeightsView()
    records, _ = read_model_weights(bootstrap, topic, "drnflow-major-update-weights", timeout_s)
    for rec in records:
        if rec["model_id"] != model_id:
            continue
        v = int(rec["version"])
        view.max_version = max(view.max_version, v)
        view.versions_seen[v] = view.versions_seen.get(v, 0) + 1
        view.latest = rec
        if want_version is not None and v == want_version:
            view.wanted = rec
        if rec["kind"] == "MAJOR":
            view.major_checksums[str(rec["checksum"])] = v
    return view
