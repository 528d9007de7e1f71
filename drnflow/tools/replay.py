"""Replay: re-publish a range of impressions and clicks under a new topic prefix with their original event
times (paced at xN event-time speed or as fast as possible), seed the new model-weights topic with the
versions the original run started from, and optionally rerun the minor-update job bounded over it and
check that it reproduces the original MINOR versions byte for byte.
"""

from __future__ import annotations

import heapq
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from drnflow.errors import CommandError
from operators.kafka_io import (
    Client,
    KafkaRecord,
    RecordRange,
    RecordWriter,
    read_partition,
    record_time,
    require_topics,
)
from schemas import serde
from schemas.topics import TOPIC_SCHEMAS, TopicNames

#: The logical topics replay re-publishes (the job's inputs).
REPLAYED = ("impressions", "clicks")


def check_prefixes(from_prefix: str, to_prefix: str, command: str) -> None:
    """Both prefixes valid and different: a command that copies a log writes into other topics than it reads."""
    TopicNames(from_prefix)
    TopicNames(to_prefix)
    if from_prefix == to_prefix:
        raise ValueError(f"--to-prefix must differ from the source prefix {from_prefix!r}: {command} writes into "
                         "new topics")


@dataclass(frozen=True)
class ReplayConfig:
    bootstrap: str
    from_prefix: str
    to_prefix: str
    range: RecordRange = field(default_factory=RecordRange)
    #: Event-time speed-up (2.0 = twice as fast as it happened); None = as fast as possible.
    speed: float | None = None
    client: Client = "kafka-python"
    #: Also seed the new model-weights topic with the versions the original run started from.
    with_weights: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check_prefixes(self.from_prefix, self.to_prefix, "replay")
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"--speed must be > 0, got {self.speed}")


@dataclass
class ReplayResult:
    records: dict[str, int]
    weights_copied: int
    first_event_time: int | None
    last_event_time: int | None
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.records.values())

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Timed:
    time: int
    logical: str
    record: KafkaRecord


def timed_records(records: Iterable[KafkaRecord], logical: str) -> Iterator[_Timed]:
    schema = TOPIC_SCHEMAS[logical]
    for r in records:
        yield _Timed(record_time(r, schema), logical, r)


def merge_by_event_time(streams: Sequence[Iterable[_Timed]]) -> Iterator[_Timed]:
    """Interleave partition streams by event time; each stream keeps its own (offset) order even where
    its event times go backwards, since that order is what downstream jobs see."""
    return heapq.merge(*streams, key=lambda t: t.time)


class Pacer:
    """Sleeps so event time advances `speed` times faster than wall time (late records never wait)."""

    def __init__(self, speed: float | None, clock: Any = time.monotonic, sleep: Any = time.sleep) -> None:
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self.origin: tuple[float, int] | None = None

    def wait_for(self, event_time: int) -> None:
        if self.speed is None:
            return
        if self.origin is None:
            self.origin = (self.clock(), event_time)
            return
        wall0, t0 = self.origin
        due = wall0 + (event_time - t0) / 1000.0 / self.speed
        ahead = due - self.clock()
        if ahead > 0:
            self.sleep(ahead)


def base_weights(records: Iterable[KafkaRecord], start_time: int | None) -> list[KafkaRecord]:
    """The model-weights records a run starting at `start_time` saw: per model, everything before its first
    MINOR of a window ending after `start_time` (that MINOR and what follows are what the run produced: its
    window holds replayed records; start_time is rarely window-aligned, so window_start would miss the first).
    With no start time, every MINOR counts as produced."""
    cut: set[str] = set()
    kept = []
    for r in records:
        if r.value is None:
            continue
        try:
            w = serde.decode("ModelWeights", r.value)
        except serde.SerdeError:
            continue
        model = str(w["model_id"])
        if model in cut:
            continue
        if w["kind"] == "MINOR" and (start_time is None or (w["window_end"] is not None
                                                            and int(w["window_end"]) > start_time)):
            cut.add(model)
            continue
        kept.append(r)
    return kept


def copy_base_weights(bootstrap: str, src: TopicNames, dst: TopicNames, start_time: int | None,
                      writer: RecordWriter, client: Client) -> int:
    """Write `base_weights` of src's model-weights topic to dst's (created): what a run over the copied range
    starts from. Returns how many records were written."""
    parts = require_topics(bootstrap, [src.model_weights, dst.model_weights])
    weights = [r for p in range(parts[src.model_weights])
               for r in read_partition(bootstrap, src.model_weights, p, RecordRange(), None, client)]
    copied = 0
    for r in base_weights(weights, start_time):
        partition = r.partition if r.partition < parts[dst.model_weights] else None
        writer.send(dst.model_weights, r.key, r.value, partition, r.timestamp, r.headers)
        copied += 1
    return copied


def topics_with_records(bootstrap: str, topics: Sequence[str], client: Client) -> list[str]:
    """Those of `topics` (existing) that hold a record."""
    parts = require_topics(bootstrap, list(topics))
    return [t for t in topics if not _empty(bootstrap, t, parts[t], client)]


def _empty(bootstrap: str, topic: str, partitions: int, client: Client) -> bool:
    for p in range(partitions):
        for _ in read_partition(bootstrap, topic, p, RecordRange(), None, client):
            return False
    return True


def _has_a_record(cfg: ReplayConfig, topic: str, partition: int) -> bool:
    logical = topic.removeprefix(cfg.from_prefix)
    for _ in read_partition(cfg.bootstrap, topic, partition, cfg.range, TOPIC_SCHEMAS[logical], cfg.client):
        return True
    return False


def replay(cfg: ReplayConfig) -> ReplayResult:
    from tqdm import tqdm

    from drnflow.stack.kafka import TopicSettings, create_topics

    src, dst = TopicNames(cfg.from_prefix), TopicNames(cfg.to_prefix)
    parts = require_topics(cfg.bootstrap, [src.impressions, src.clicks, src.model_weights])
    sources = [(src.name(logical), p) for logical in REPLAYED for p in range(parts[src.name(logical)])]
    if not any(_has_a_record(cfg, topic, p) for topic, p in sources):
        # Said before anything is created: an empty range leaves no half-made prefix behind.
        raise CommandError(f"the range holds no impressions or clicks in '{cfg.from_prefix}*'; nothing was created "
                           "or written (check --from/--to and the prefix)")
    create_topics(cfg.bootstrap, dst, TopicSettings(partitions=max(parts.values())))
    dst_parts = require_topics(cfg.bootstrap, [dst.name(t) for t in REPLAYED])
    for topic in topics_with_records(cfg.bootstrap, [dst.name(logical) for logical in REPLAYED], cfg.client):
        raise CommandError(f"topic {topic!r} already holds records; replay into a new --to-prefix")
    streams = [
        timed_records(read_partition(cfg.bootstrap, src.name(logical), p, cfg.range, TOPIC_SCHEMAS[logical],
                                     cfg.client), logical)
        for logical in REPLAYED
        for p in range(parts[src.name(logical)])
    ]
    writer = RecordWriter(cfg.bootstrap, cfg.client)
    pacer = Pacer(cfg.speed)
    counts = dict.fromkeys(REPLAYED, 0)
    first: int | None = None
    last: int | None = None
    t0 = time.monotonic()
    bar = tqdm(unit=" rec", unit_scale=True, disable=not cfg.progress, file=sys.stderr, desc="replay")
    try:
        for item in merge_by_event_time(streams):
            pacer.wait_for(item.time)
            r = item.record
            target = dst.name(item.logical)
            partition = r.partition if r.partition < dst_parts[target] else None
            writer.send(target, r.key, r.value, partition, item.time, r.headers)
            counts[item.logical] += 1
            first = item.time if first is None else min(first, item.time)
            last = item.time if last is None else max(last, item.time)
            bar.update(1)
        copied = 0
        if cfg.with_weights:
            start = cfg.range.from_time if cfg.range.from_time is not None else first
            copied = copy_base_weights(cfg.bootstrap, src, dst, start, writer, cfg.client)
    finally:
        bar.close()
    writer.close()
    return ReplayResult(counts, copied, first, last, time.monotonic() - t0)


# ------------------------------------------------------------------------------------------ the job rerun
def run_minor_update_bounded(bootstrap: str, prefix: str, job_args: Sequence[str], timeout_s: float = 900) -> str:
    """`python -m jobs.minor_update --bounded` over the replayed topics (local mini-cluster); returns its log."""
    from operators.paths import PROJECT_ROOT

    for flag in ("--bootstrap", "--prefix", "--topic-prefix", "--bounded"):
        if any(a == flag or a.startswith(flag + "=") for a in job_args):
            raise CommandError(f"job flag {flag} is set by replay itself; leave it out")
    cmd = [sys.executable, "-m", "jobs.minor_update", "--bounded", f"--bootstrap={bootstrap}",
           f"--prefix={prefix}", *job_args]
    try:
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CommandError(f"the bounded minor-update run did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise CommandError(f"the bounded minor-update run failed (exit {proc.returncode}): "
                           f"{lines[-1] if lines else 'no output'}")
    return proc.stdout + proc.stderr


@dataclass
class WeightsComparison:
    """Per model, the original MINOR versions of the range against the replay's, as raw Avro bytes."""

    original: int
    replayed: int
    matched: int
    first_difference: str | None

    @property
    def identical(self) -> bool:
        return self.first_difference is None and self.matched == self.original


def _minors(bootstrap: str, topic: str, rng: RecordRange, client: Client) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    partitions = require_topics(bootstrap, [topic])[topic]
    for p in range(partitions):
        for r in read_partition(bootstrap, topic, p, RecordRange(), None, client):
            if r.value is None:
                continue
            try:
                w = serde.decode("ModelWeights", r.value)
            except serde.SerdeError:
                continue
            ws = w["window_start"]
            if w["kind"] != "MINOR" or ws is None:
                continue
            if (rng.from_time is not None and ws < rng.from_time) or (rng.to_time is not None and ws >= rng.to_time):
                continue
            out.setdefault(str(w["model_id"]), []).append(bytes(r.value))
    return out


def compare_weights(bootstrap: str, from_prefix: str, to_prefix: str, rng: RecordRange,
                    client: Client = "kafka-python") -> WeightsComparison:
    """Byte comparison of MINOR versions: the replay must reproduce every original one, in order. The
    replay may have more (windows an unbounded original run had not closed yet)."""
    original = _minors(bootstrap, TopicNames(from_prefix).model_weights, rng, client)
    replayed = _minors(bootstrap, TopicNames(to_prefix).model_weights, rng, client)
    matched = 0
    first_difference = None
    for model in sorted(original):
        mine, theirs = original[model], replayed.get(model, [])
        for i, value in enumerate(mine):
            if i >= len(theirs):
                first_difference = first_difference or f"model {model}: the replay has only {len(theirs)} of " \
                                                       f"{len(mine)} MINOR versions"
                break
            if theirs[i] != value:
                w = serde.decode("ModelWeights", value)
                first_difference = first_difference or (
                    f"model {model}: MINOR v{w['version']} (window {w['window_start']}) differs")
                break
            matched += 1
    return WeightsComparison(sum(map(len, original.values())), sum(map(len, replayed.values())), matched,
                             first_difference)
