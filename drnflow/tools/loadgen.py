"""Load generator for soak tests: traffic logged once (impressions and clicks under one prefix, e.g. written by
`drnflow simulate`) is written to another prefix at a set rate, lap after lap, for as long as a soak needs.

Every lap is new traffic to the job: lap k (k >= 1) moves every event time, and its Kafka timestamp, on by
k lap spans, and appends `~k` to each request id (impressions and clicks alike, so they still match), so
attribution sees fresh requests and event time, hence windows, keeps moving. Lap 0 is the log as it was.
The records are changed in their Avro bytes (request_id and event_time lead both records), never decoded,
so the generator writes faster than the job reads. A record that does not have those fields (a hostile one
in the log) is written as it is on every lap, with its timestamp moved: the job dead-letters it each time.

The whole range is held in memory (about its size on the broker); records keep their keys' partitioning
(the Java client's murmur2, as simulate writes them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from drnflow.errors import CommandError
from drnflow.tools.replay import (
    REPLAYED,
    check_prefixes,
    copy_base_weights,
    merge_by_event_time,
    timed_records,
    topics_with_records,
)
from operators.kafka_io import Client, RecordRange, RecordWriter, read_partition, require_topics
from operators.sim_producer import FUTURE_TIMESTAMP_MS, EventWriter
from schemas.event_time import join_event_prefix, split_event_prefix
from schemas.topics import TOPIC_SCHEMAS, TopicNames

#: A lap's event times start at least this far (and on a whole multiple of it) after the previous lap's.
LAP_ALIGN_MS = 60_000
#: The pacer looks at the clock at most once per this many records (and at least every 10 ms of schedule).
PACE_EVERY = 256

_KIND = {"impressions": "impression", "clicks": "click"}


@dataclass(frozen=True)
class LoadgenConfig:
    bootstrap: str
    from_prefix: str
    to_prefix: str
    range: RecordRange = field(default_factory=RecordRange)
    #: Events (impressions + clicks) per second of wall time; None = as fast as possible.
    rate: float | None = None
    #: Laps of the logged range to write; None = until stopped (or `duration_s`).
    laps: int | None = 1
    #: Stop after this many seconds of writing, whatever lap it is in.
    duration_s: float | None = None
    client: Client = "kafka-python"
    #: Also seed the new model-weights topic with the versions the logged range started from.
    with_weights: bool = True
    #: Write into topics that hold records already (a soak going on after a pause): the first lap is the first
    #: one whose event times all come after the newest event there; no weights are seeded.
    continue_run: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        check_prefixes(self.from_prefix, self.to_prefix, "loadgen")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"--rate must be > 0 events/s, got {self.rate}")
        if self.laps is not None and self.laps < 1:
            raise ValueError(f"--laps must be >= 1 (0 on the command line: until stopped), got {self.laps}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"--duration must be > 0 s, got {self.duration_s}")


@dataclass(frozen=True)
class Traffic:
    """The logged range in event-time order: per record (kind, key, value, event time, its split value or
    None when the value has no request_id/event_time prefix)."""

    records: list[tuple[str, bytes | None, bytes, int, tuple[bytes, bytes, int, bytes] | None]]
    first_time: int
    last_time: int
    #: The most partitions of the logged impressions and clicks topics: the target's topics get as many.
    partitions: int = 1

    @property
    def lap_shift_ms(self) -> int:
        """How far each lap's event times move on: past the whole range, to a whole minute."""
        return ((self.last_time - self.first_time) // LAP_ALIGN_MS + 1) * LAP_ALIGN_MS


def read_traffic(bootstrap: str, prefix: str, rng: RecordRange, client: Client) -> Traffic:
    """Impressions and clicks of the range, merged by event time (each partition in its offset order)."""
    src = TopicNames(prefix)
    parts = require_topics(bootstrap, [src.impressions, src.clicks])
    streams = [timed_records(read_partition(bootstrap, src.name(logical), p, rng, TOPIC_SCHEMAS[logical], client),
                             logical)
               for logical in REPLAYED for p in range(parts[src.name(logical)])]
    records = []
    for item in merge_by_event_time(streams):
        r = item.record
        if r.value is None:
            continue  # a tombstone is no event: the job never sees one either
        records.append((_KIND[item.logical], r.key, bytes(r.value), item.time, split_event_prefix(r.value)))
    if not records:
        raise CommandError(f"the range holds no impressions or clicks in '{prefix}*'; nothing was created or written "
                           "(check --from/--to and the prefix)")
    # The span is that of the events: an undecodable record's timestamp is when it was produced, not an event time.
    times = [r[3] for r in records if r[4] is not None] or [r[3] for r in records]
    return Traffic(records, min(times), max(times), max(parts.values()))


def lap_records(traffic: Traffic, lap: int) -> Iterator[tuple[str, bytes | None, bytes, int]]:
    """Lap `lap`'s records: (kind, key, value, timestamp), request ids suffixed and times moved for lap >= 1."""
    if lap == 0:
        for kind, key, value, t, _ in traffic.records:
            yield kind, key, value, t
        return
    shift = lap * traffic.lap_shift_ms
    suffix = f"~{lap}".encode()
    last = traffic.first_time + shift
    for kind, key, value, t, split in traffic.records:
        if split is None:
            # No event time to move: it goes with the time of the record before it in the lap.
            yield kind, key, value, last
            continue
        request_id, second, event_time, tail = split
        new_id = request_id + suffix
        new_key = new_id if key == request_id else key  # a key that is not the request id is kept as it was
        last = t + shift
        yield kind, new_key, join_event_prefix(new_id, second, event_time + shift, tail), last


def laps_before_the_future(traffic: Traffic, now_ms: int, ahead_ms: int = FUTURE_TIMESTAMP_MS) -> int:
    """How many laps keep every event time at most `ahead_ms` after `now_ms`: the broker refuses records
    further ahead (message.timestamp.after.max.ms, 1 h by default)."""
    room = now_ms + ahead_ms - traffic.last_time
    return 0 if room < 0 else room // traffic.lap_shift_ms + 1


class RatePacer:
    """Holds a writer to `rate` events/s of wall time from its first record; notes how far it fell behind."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.start = clock()
        #: The most the writer was behind its schedule, in seconds (0: it kept up).
        self.behind_s = 0.0
        #: Records between two looks at the clock: 10 ms of the schedule, 1 to PACE_EVERY.
        self.every = PACE_EVERY if rate is None else max(1, min(PACE_EVERY, int(rate / 100)))

    def wait(self, sent: int) -> None:
        """Called with the number of records sent so far: sleeps until the schedule allows the next one."""
        if self.rate is None:
            return
        ahead = self.start + sent / self.rate - self.clock()
        if ahead > 0:
            self.sleep(ahead)
        else:
            self.behind_s = max(self.behind_s, -ahead)


def first_lap_after(traffic: Traffic, newest_ms: int | None) -> int:
    """The first lap whose event times all come after `newest_ms` (None: lap 0)."""
    if newest_ms is None or newest_ms < traffic.first_time:
        return 0
    return (newest_ms - traffic.first_time) // traffic.lap_shift_ms + 1


@dataclass
class LoadgenResult:
    records: dict[str, int]
    #: The laps written: first_lap, first_lap + 1, ... (whole ones; a stopped run ends inside the next).
    first_lap: int
    laps_done: int
    #: Records whose value had no request_id/event_time to rewrite, written as they were.
    passed_through: int
    weights_copied: int
    seconds: float
    behind_s: float
    #: Why it ended before its laps were done (a signal, --duration, the clock), or None.
    stopped: str | None

    @property
    def total(self) -> int:
        return sum(self.records.values())

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Progress:
    sent: int = 0
    #: Whole laps written.
    laps: int = 0


def _write_laps(traffic: Traffic, first: int, laps: int, writer: EventWriter, pacer: RatePacer,
                deadline: float | None, progress: _Progress, bar: Any) -> str | None:
    """Writes laps first .. first + laps - 1 at the pacer's rate; returns why it stopped early, or None."""
    for lap in range(first, first + laps):
        for kind, key, value, t in lap_records(traffic, lap):
            if progress.sent % pacer.every == 0:
                pacer.wait(progress.sent)
                bar.update(progress.sent - bar.n)
                if deadline is not None and pacer.clock() >= deadline:
                    return "--duration ran out"
            writer.send_raw(kind, key, value, t)
            progress.sent += 1
        progress.laps += 1
    return None


def loadgen(cfg: LoadgenConfig, traffic: Traffic | None = None) -> LoadgenResult:
    from tqdm import tqdm

    from drnflow.stack.kafka import TopicSettings, create_topics
    from drnflow.tools.monitor_io import newest_event

    traffic = traffic or read_traffic(cfg.bootstrap, cfg.from_prefix, cfg.range, cfg.client)
    src, dst = TopicNames(cfg.from_prefix), TopicNames(cfg.to_prefix)
    create_topics(cfg.bootstrap, dst, TopicSettings(partitions=traffic.partitions))
    first = 0
    if cfg.continue_run:
        first = first_lap_after(traffic, newest_event(cfg.bootstrap, dst))
    else:
        for topic in topics_with_records(cfg.bootstrap, [dst.impressions, dst.clicks], cfg.client):
            raise CommandError(f"topic {topic!r} already holds records; write the load into a new --to-prefix, "
                               "or go on after its newest event with --continue")
    fit = laps_before_the_future(traffic, int(time.time() * 1000)) - first
    if fit <= 0 or (cfg.laps is not None and cfg.laps > fit):
        raise CommandError(f"lap {first + max(fit, 0) + 1} of this range would have event times more than 1 h ahead "
                           f"of this machine's clock, which the broker refuses (message.timestamp.after.max.ms): "
                           f"{max(fit, 0)} lap(s) fit; use fewer laps or an older range (simulate --start-time)")
    laps = fit if cfg.laps is None else cfg.laps
    copied = 0
    if cfg.with_weights and not cfg.continue_run:
        weights_writer = RecordWriter(cfg.bootstrap, cfg.client)
        start = cfg.range.from_time if cfg.range.from_time is not None else traffic.first_time
        copied = copy_base_weights(cfg.bootstrap, src, dst, start, weights_writer, cfg.client)
        weights_writer.close()
    writer = EventWriter(cfg.bootstrap, dst, client_id="drnflow-loadgen")
    total = None if cfg.laps is None else cfg.laps * len(traffic.records)
    bar = tqdm(total=total, unit=" ev", unit_scale=True, disable=not cfg.progress, file=sys.stderr, desc="loadgen")
    pacer = RatePacer(cfg.rate)
    deadline = None if cfg.duration_s is None else pacer.start + cfg.duration_s
    progress = _Progress()
    try:
        stopped = _write_laps(traffic, first, laps, writer, pacer, deadline, progress, bar)
    except KeyboardInterrupt:
        stopped = "interrupted"  # what was handed to the writer is flushed below: nothing sent is lost
    finally:
        bar.update(progress.sent - bar.n)
        bar.close()
    writer.flush()
    writer.close()
    if stopped is None and cfg.laps is None:
        stopped = "the next lap's event times would be more than 1 h ahead of the clock"
    seconds = pacer.clock() - pacer.start
    in_lap = progress.sent - progress.laps * len(traffic.records)
    passed = sum(1 for r in traffic.records if r[4] is None) * progress.laps + sum(
        1 for r in traffic.records[:in_lap] if r[4] is None)
    counts = {"impressions": writer.counts["impression"], "clicks": writer.counts["click"]}
    return LoadgenResult(counts, first, progress.laps, passed, copied, seconds, pacer.behind_s, stopped)
