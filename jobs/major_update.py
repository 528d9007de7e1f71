"""The major update on Kafka: a bounded read of one range of impressions and clicks (kafka-python, by
offsets), `models.major.update.run_update`, and the MAJOR publish on model-weights.

Why a bounded client read and not a Flink batch job: the range is one trigger's worth (an hour of
logs, DRN's T_R) and training, not reading, is the cost; a plain consumer reads it at tens of thousands
of records per second (the report's `read.records_per_s`) without starting a cluster.

Where the range's records are: impressions by the trigger's per-partition offsets when it has them,
else by `offsets_for_times` on the event-time bounds (producers set the Kafka timestamp to the event
time), widened by `slack_ms` for out-of-order records and filtered on `event_time` either way. Clicks by
time from the range start to its end plus the attribution window (a click may follow its impression by
that much), kept only when they belong to an impression of the range.

Version numbers: a MAJOR gets max(version of the model on model-weights) + 1, read right before the
publish, so the minor-update job (DbgdLearner.rebase takes only newer versions) always rebases on it.
If a MINOR took the same number meanwhile (the minor job publishes concurrently), the MAJOR is published
again with the next free number. A candidate whose checksum is already a MAJOR of the model (a run that
died after publishing and was resumed) is not published twice.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from models.major.update import (
    PUBLISH,
    BaseModel,
    CorruptRecord,
    LogRange,
    MajorUpdateConfig,
    UpdateOutcome,
    report_markdown,
    run_update,
)
from operators import kafka_io
from operators.kafka_io import PartitionSpan, read_spans, spans_by_time
from operators.model_weights_log import WeightsView, read_weights
from schemas import serde
from schemas.topics import TopicNames

log = logging.getLogger(__name__)

FINAL_STATUSES = ("PUBLISHED", "REJECTED", "EMPTY", "CORRUPT", "MISMATCH", "ALREADY_PUBLISHED")


def _decode_all(name: str, it: Iterator[tuple[str, int, int, bytes | None]], corrupt: list[CorruptRecord]
                ) -> Iterator[dict[str, Any]]:
    for topic, part, off, value in it:
        if value is None:
            corrupt.append(CorruptRecord(topic, part, off, "MALFORMED: null value"))
            continue
        try:
            yield serde.decode(name, value)
        except serde.SerdeError as e:
            corrupt.append(CorruptRecord(topic, part, off, f"MALFORMED: {e}"))


def read_range(
    bootstrap: str, topics: TopicNames, model_id: str, start_ms: int, end_ms: int, *,
    attribution_window_ms: int = 30 * 60_000, slack_ms: int = 60_000,
    impression_offsets: Sequence[Mapping[str, Any]] = (), timeout_s: float = 120.0,
) -> LogRange:
    """The decoded impressions of `model_id` with event_time in [start_ms, end_ms) and their clicks."""
    if end_ms <= start_ms:
        raise ValueError(f"empty range: event_time_end {end_ms} <= event_time_start {start_ms}")
    t0 = time.perf_counter()
    consumer = kafka_io.consumer(bootstrap, "drnflow-major-update-read")
    corrupt: list[CorruptRecord] = []
    stats: dict[str, Any] = {}
    try:
        offs = [o for o in impression_offsets if o["topic"] == topics.impressions]
        if offs:
            imp_spans = [PartitionSpan(o["topic"], int(o["partition"]), int(o["start_offset"]),
                                       int(o["end_offset"])) for o in offs]
            stats["impressions_by"] = "trigger offsets"
        else:
            imp_spans = spans_by_time(consumer, topics.impressions, start_ms - slack_ms, end_ms + slack_ms)
            stats["impressions_by"] = "offsets_for_times"
        click_spans = spans_by_time(consumer, topics.clicks, start_ms - slack_ms,
                                    end_ms + attribution_window_ms + slack_ms)
        records = 0
        impressions = []
        for rec in _decode_all("Impression", read_spans(consumer, imp_spans, timeout_s), corrupt):
            records += 1
            if rec["model_id"] == model_id and start_ms <= int(rec["event_time"]) < end_ms:
                impressions.append(rec)
        wanted = {str(r["request_id"]) for r in impressions}
        clicks = []
        for rec in _decode_all("Click", read_spans(consumer, click_spans, timeout_s), corrupt):
            records += 1
            if str(rec["request_id"]) in wanted:
                clicks.append(rec)
    finally:
        consumer.close()
    took = time.perf_counter() - t0
    stats.update(records=records + len(corrupt), seconds=took,
                 records_per_s=(records + len(corrupt)) / took if took > 0 else None,
                 impression_spans=[s.__dict__ for s in imp_spans],
                 click_spans=[s.__dict__ for s in click_spans])
    return LogRange(model_id, int(start_ms), int(end_ms), impressions, clicks, corrupt, stats)


def choose_base(view: WeightsView, want_version: int | None) -> tuple[BaseModel | None, str]:
    """The trigger's base version when it is on the topic, else the latest record of the model."""
    from models.weights import parse_model_weights_record

    rec, why = view.wanted, f"the trigger's base_version {want_version}"
    if rec is None:
        rec = view.latest
        why = "the latest version on model-weights" + (
            f" (the trigger's base_version {want_version} is not on the topic)" if want_version is not None else ""
        )
    if rec is None:
        return None, "no version of the model on model-weights: training a new network"
    flat, layout = parse_model_weights_record(rec)
    return (BaseModel(int(rec["version"]), flat, layout, str(rec.get("architecture") or "")),
            f"v{rec['version']} ({rec['kind']}): {why}")


def publish_major(bootstrap: str, topic: str, model_id: str, outcome: UpdateOutcome, base: BaseModel | None,
                  window: tuple[int, int], max_tries: int = 3) -> tuple[int | None, str]:
    """Publish the candidate as a MAJOR with a version above every version of the model; returns
    (version, note). Skips a candidate already published (same checksum)."""
    from models.weights import checksum, flatten, layout_of, make_model_weights_record, to_bytes

    assert outcome.network is not None
    flat, layout = flatten(outcome.network), layout_of(outcome.network)
    digest = checksum(to_bytes(flat))
    view = read_weights(bootstrap, topic, model_id)
    if digest in view.major_checksums:
        return view.major_checksums[digest], f"already published as v{view.major_checksums[digest]} (same checksum)"
    producer = kafka_io.producer(bootstrap, "drnflow-major-update-publish", linger_ms=0)
    try:
        for attempt in range(max_tries):
            # above every version; a model's first is 1, as simulate --publish-initial and the demo number it
            version = max(view.max_version, 0) + 1
            rec = make_model_weights_record(
                model_id=model_id, version=version, parent_version=None if base is None else base.version,
                kind="MAJOR", flat=flat, layout=layout, created_at=window[1], explore_seeds=[],
                window_start=window[0], window_end=window[1], architecture=outcome.architecture,
            )
            producer.send(topic, key=model_id.encode(), value=serde.encode("ModelWeights", rec)).get(timeout=30)
            producer.flush(timeout=30)
            view = read_weights(bootstrap, topic, model_id)
            if view.versions_seen.get(version, 0) == 1:
                return version, "published" if attempt == 0 else f"published after {attempt} version collision(s)"
            log.warning("model %s: v%d was also taken by another record meanwhile; publishing again",
                        model_id, version)
        return None, f"gave up after {max_tries} version collisions"
    finally:
        producer.close(timeout=10)


ReportHook = Callable[[dict[str, Any]], None]


def run_key(model_id: str, start_ms: int, end_ms: int, cfg: MajorUpdateConfig, base_version: int | None,
            impression_offsets: Sequence[Mapping[str, Any]] = ()) -> str:
    """Hex digest of everything that decides what a run trains and publishes (its config's repr is stable:
    frozen dataclasses of numbers and strings)."""
    import hashlib

    text = json.dumps([model_id, start_ms, end_ms, repr(cfg), base_version,
                       [sorted(o.items()) for o in impression_offsets]], default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def run_range(
    bootstrap: str, topics: TopicNames, model_id: str, start_ms: int, end_ms: int, cfg: MajorUpdateConfig,
    run_dir: Path, *, base_version: int | None = None, impression_offsets: Sequence[Mapping[str, Any]] = (),
    trigger: Mapping[str, Any] | None = None, progress: bool = False, force: bool = False, keyed: bool = False,
) -> dict[str, Any]:
    """One major update end to end; the report is written to run_dir/report.{json,md} and returned.
    A run dir holding a final report is not run again (unless `force`); a partial one resumes.

    With `keyed`, run_dir is a parent and the run's own dir below it is named by the resolved base version
    and `run_key`: a range run again after a new version was published, or with other settings (probation,
    steps, gate), is a new run, not the old report returned as if it were this one's."""
    view = read_weights(bootstrap, topics.model_weights, model_id, base_version)
    base, base_why = choose_base(view, base_version)
    resolved = None if base is None else base.version
    key = run_key(model_id, start_ms, end_ms, cfg, resolved, impression_offsets)
    if keyed:
        run_dir = run_dir / f"base-v{'none' if resolved is None else resolved}-{key[:10]}"
    report_path = run_dir / "report.json"
    if report_path.exists() and not force:
        done = json.loads(report_path.read_text(encoding="utf-8"))
        if done.get("status") in FINAL_STATUSES:
            log.info("%s: already done (%s), not run again", run_dir, done["status"])
            done["skipped_as_done"] = True
            done["run_dir"] = str(run_dir)
            return dict(done)
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data_log = read_range(bootstrap, topics, model_id, start_ms, end_ms,
                          attribution_window_ms=cfg.transitions.attribution_window_ms,
                          impression_offsets=impression_offsets)
    outcome = run_update(data_log, base, cfg, checkpoint_dir=run_dir, progress=progress)
    report = outcome.report
    report["base_choice"] = base_why
    report["run_key"] = key
    report["run_dir"] = str(run_dir)
    report["trigger"] = dict(trigger) if trigger is not None else None
    if outcome.status == PUBLISH:
        version, note = publish_major(bootstrap, topics.model_weights, model_id, outcome, base, (start_ms, end_ms))
        report["published_version"] = version
        report["publish_note"] = note
        report["status"] = ("PUBLISHED" if note.startswith("published") else
                            "ALREADY_PUBLISHED" if note.startswith("already") else "PUBLISH_FAILED")
        log.info("model %s: major update %s as v%s (%s)", model_id, report["status"], version, note)
    _write_report(run_dir, report)
    return report


def _write_report(run_dir: Path, report: Mapping[str, Any]) -> None:
    tmp = run_dir / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    tmp.replace(run_dir / "report.json")
    (run_dir / "report.md").write_text(report_markdown(report), encoding="utf-8")


def follow_triggers(
    bootstrap: str, topics: TopicNames, cfg: MajorUpdateConfig, runs_dir: Path, *,
    model_ids: Sequence[str] = (), group_id: str = "drnflow-major-update", max_triggers: int | None = None,
    idle_timeout_s: float | None = None, progress: bool = False, on_report: ReportHook | None = None,
) -> int:
    """Consume major-update-triggers and run one update per trigger (committing its offset after the run,
    so a restart resumes at the first unfinished trigger, and that run from its checkpoint)."""
    consumer = kafka_io.consumer(
        bootstrap, "drnflow-major-update-follow", topics.major_update_triggers, group_id=group_id,
        auto_offset_reset="earliest", max_poll_records=1, max_poll_interval_ms=3_600_000,
    )
    done = 0
    idle_since = time.monotonic()
    try:
        while max_triggers is None or done < max_triggers:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                    break
                continue
            for records in batch.values():
                for r in records:
                    _one_trigger(bootstrap, topics, cfg, runs_dir, r, model_ids, progress, on_report)
                    done += 1
            consumer.commit()
            idle_since = time.monotonic()
    finally:
        consumer.close()
    return done


def _one_trigger(bootstrap: str, topics: TopicNames, cfg: MajorUpdateConfig, runs_dir: Path, r: Any,
                 model_ids: Sequence[str], progress: bool, on_report: ReportHook | None) -> None:
    try:
        trig = serde.decode("MajorUpdateTrigger", r.value or b"")
    except serde.SerdeError as e:
        log.error("%s[%d]@%d: undecodable MajorUpdateTrigger, skipped: %s", r.topic, r.partition, r.offset, e)
        return
    if model_ids and trig["model_id"] not in model_ids:
        return
    run_dir = runs_dir / trig["model_id"] / _safe(trig["trigger_id"])
    try:
        report = run_range(
            bootstrap, topics, trig["model_id"], int(trig["event_time_start"]), int(trig["event_time_end"]),
            cfg, run_dir, base_version=int(trig["base_version"]), impression_offsets=trig["impression_offsets"],
            trigger=trig, progress=progress,
        )
    except ValueError as e:
        log.error("trigger %s: %s; nothing published", trig["trigger_id"], e)
        report = {"model_id": trig["model_id"], "trigger": trig, "status": "EMPTY", "reason": str(e)}
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_report(run_dir, report)
    if on_report is not None:
        on_report(report)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"
