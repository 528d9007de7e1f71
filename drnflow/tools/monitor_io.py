"""Following `win-rates`, `model-weights` and the newest impression time for `drnflow monitor`, and the
--plot drawing (PNG or a self-contained HTML page with an inline SVG)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from typing import Any

from drnflow.errors import CommandError
from drnflow.tools.monitor import weights_metadata
from operators import kafka_io
from schemas import serde
from schemas.event_time import event_time_of
from schemas.topics import TopicNames

log = logging.getLogger(__name__)


class TopicFollower:
    """Committed records of a topic from the beginning; `catch_up()` returns what arrived since the last
    call, up to the end offsets at the time of the call."""

    def __init__(self, bootstrap: str, topic: str, schema_name: str) -> None:
        from kafka import TopicPartition

        self.topic = topic
        self.schema_name = schema_name
        self.undecodable = 0
        self._consumer = kafka_io.consumer(bootstrap, "drnflow-monitor", max_partition_fetch_bytes=64 * 1024 * 1024)
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            self._consumer.close()
            raise CommandError(f"topic {topic!r} does not exist on {bootstrap}; check --prefix")
        self._tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)

    def catch_up(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        ends = self._consumer.end_offsets(self._tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < ends[tp] for tp in self._tps):
            if time.monotonic() > deadline:
                raise CommandError(f"could not read {self.topic} to its end within {timeout_s:.0f} s")
            for records in self._consumer.poll(timeout_ms=300).values():
                for r in records:
                    if r.value is None:
                        continue
                    try:
                        rec = serde.decode(self.schema_name, r.value)
                    except serde.SerdeError as e:
                        self.undecodable += 1
                        log.debug("%s: %s", self.topic, e)
                        continue
                    out.append(weights_metadata(rec) if self.schema_name == "ModelWeights" else rec)
        return out

    def close(self) -> None:
        self._consumer.close()


def newest_event_time(bootstrap: str, topic: str, tail: int = 50) -> int | None:
    """The largest event time on `topic` (impressions or clicks). Exact for records stamped with their event
    time, as drnflow's writers stamp them, wherever they are in the partition: the record of the largest
    timestamp (kafka_io.newest_timestamp_offsets, from the broker's time index) is read with the last `tail`
    records of each partition, so a run of old event times written last does not hide newer ones before it."""
    from operators.kafka_io import PartitionSpan, newest_timestamp_offsets, read_span_records, whole_topic

    consumer = kafka_io.consumer(bootstrap, "drnflow-monitor-tail")
    try:
        spans = whole_topic(consumer, topic)
        newest_at = newest_timestamp_offsets(consumer, topic)
        read = [PartitionSpan(topic, s.partition, max(s.start, s.end - tail), s.end) for s in spans]
        read += [PartitionSpan(topic, s.partition, newest_at[s.partition][1], newest_at[s.partition][1] + 1)
                 for s in spans if s.partition in newest_at and newest_at[s.partition][1] < s.end - tail]
        newest: int | None = None
        for span in read:  # one span at a time: two spans of one partition cannot be read in one pass
            for r in read_span_records(consumer, [span], timeout_s=10.0):
                t = event_time_of(r.value)
                if t is not None:
                    newest = t if newest is None else max(newest, t)
        return newest
    finally:
        consumer.close()


def newest_event(bootstrap: str, topics: TopicNames) -> int | None:
    """The largest event time on a prefix's impressions and clicks (None: both empty): where a run that goes
    on after them (`simulate --continue`, `loadgen --continue`) starts."""
    times = [t for t in (newest_event_time(bootstrap, topics.impressions), newest_event_time(bootstrap, topics.clicks))
             if t is not None]
    return max(times) if times else None


def plot(win_rates: Sequence[dict[str, Any]], weights: Sequence[dict[str, Any]], path: str) -> None:
    """Win-rate (with its Wilson interval) per window and accepted updates (MINOR versions) over event time,
    one panel per model; `.png` or `.html` (an inline SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    from drnflow.tools.monitor import wilson_interval

    if not path.endswith((".png", ".html")):
        raise CommandError(f"--plot {path}: the file must end in .png or .html")
    models = sorted({str(r["model_id"]) for r in win_rates} | {str(w["model_id"]) for w in weights})
    if not models:
        raise CommandError("nothing to plot: win-rates and model-weights are empty")
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.8 * len(models)), squeeze=False, sharex=True)
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = [r for r in win_rates if r["model_id"] == model]
        pooled: dict[int, list[int]] = {}
        for r in rows:  # one point per window: all its (version, seed) rows pooled
            acc = pooled.setdefault(int(r["window_end"]), [0, 0])
            acc[0] += int(r["explore_wins"])
            acc[1] += int(r["explore_wins"]) + int(r["current_wins"])
        ends = sorted(t for t, (_, n) in pooled.items() if n > 0)
        xs = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ends]
        ys = [pooled[t][0] / pooled[t][1] for t in ends]
        cis = [wilson_interval(*pooled[t]) for t in ends]
        if xs:
            ax.fill_between(xs, [c[0] if c else 0 for c in cis], [c[1] if c else 1 for c in cis], alpha=0.2,
                            label="95% Wilson interval")
            ax.plot(xs, ys, marker="o", ms=3, lw=1, label="explore win-rate (window)")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        minors = [w for w in weights if w["model_id"] == model and w["kind"] == "MINOR"]
        for i, w in enumerate(minors):
            t = w["window_end"] if w.get("window_end") is not None else w["created_at"]
            ax.axvline(datetime.fromtimestamp(t / 1000, tz=UTC), color="tab:green", lw=0.8, alpha=0.6,
                       label="accepted update" if i == 0 else None)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{model}\nwin-rate")
        if xs or minors:
            ax.legend(loc="upper left", fontsize=7)
        else:  # a model with versions but no decided window yet: say so instead of an empty panel
            versions = sorted({int(w["version"]) for w in weights if w["model_id"] == model})
            ax.text(0.5, 0.5, f"no decided windows yet ({len(rows)} rows, versions "
                    f"{', '.join(f'v{v}' for v in versions[-5:]) or 'none'})",
                    ha="center", va="center", transform=ax.transAxes, color="grey")
    axes[-1, 0].set_xlabel("window end (event time, UTC)")
    fig.tight_layout()
    if path.endswith(".png"):
        fig.savefig(path, dpi=100)
    else:
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        svg = buf.getvalue()
        svg = svg[svg.find("<svg"):]
        with open(path, "w", encoding="utf-8") as f:
            f.write("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>drnflow monitor</title></head>"
                    f"<body><h1>drnflow monitor</h1>\n{svg}\n</body></html>\n")
    plt.close(fig)
