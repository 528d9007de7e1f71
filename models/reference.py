"""Plain-Python reference of design.md §4-§5 end to end, for tests: impressions + clicks -> WinRate rows,
dead letters and MINOR ModelWeights, with the same DbgdLearner the minor-update job runs.

It treats the input as a bounded stream where everything is on time: each window is decided once
all its clicks are in (as when the watermark passes window_end + attribution window), windows in
event-time order. Rules where §4 leaves a choice, fixed here so the JVM side can match them:

- Click rules are checked in this order; the first that fails is the reason:
  UNKNOWN_REQUEST (no impression has the request_id, or, with a click horizon H, the impression is
  more than H from the click either way: the job's state retention) > ITEM_NOT_SHOWN (item_id not in its slots) >
  OUTSIDE_WINDOW (not impression.event_time <= click.event_time <= impression.event_time +
  attribution_window, both ends inclusive) > DUPLICATE. A click that breaks a rule never "uses up"
  its (request_id, item_id): DUPLICATE is decided among the clicks that pass the other rules, and the
  first of them by (event_time, input position) counts.
- Two impressions with one request_id: the first in input (topic) order is the impression, as in
  the job; the others go to dead letters as DUPLICATE_IMPRESSION and count nowhere.
- The rules themselves are models/attribution.py, shared with the major update's transitions.
- An item listed in two slots takes the team of its first slot (team-draft never does this).
- Windows are tumbling [start, start + window) on the impression's event time, aligned to epoch 0.
  A row is keyed (model_id, window, model_version, explore_seed) with the impression's explore_seed.
- Emission order: windows by window_start; within a window, models by model_id; within a model,
  rows by (model_version, explore_seed) as DbgdLearner.on_window returns them. A MINOR version is
  published right after its window's rows. Dead letters are ordered by (source_topic, source_offset).
- Dead letters are DeadLetter records whose source_offset is the record's position in its input
  list (one partition, 0), raw_key the request_id, raw_value the record's Avro bytes.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models import attribution
from models.dbgd import DRN_ATTRIBUTION_WINDOW_MS, DRN_WINDOW_MS, DbgdConfig, DbgdLearner
from models.interleave import credit, seed_outcomes
from models.pdgd_learner import PDGD_BATCH_FIELD, PdgdConfig, PdgdLearner, batch_bytes, window_learner
from schemas import serde
from schemas.reasons import (
    DUPLICATE,
    DUPLICATE_IMPRESSION,
    ITEM_NOT_SHOWN,
    MALFORMED,
    OUT_OF_RANGE,
    OUTSIDE_WINDOW,
    UNKNOWN_REQUEST,
)
from schemas.records import record_problem, skew_problem

__all__ = [
    "DUPLICATE", "DUPLICATE_IMPRESSION", "ITEM_NOT_SHOWN", "OUTSIDE_WINDOW", "UNKNOWN_REQUEST",
    "ReferenceConfig", "ReferenceResult", "attribute_clicks", "dedupe_impressions", "impression_outcome",
    "run_reference", "window_rows", "window_start_of",
]

EXPLORE, CURRENT, TIE, NO_CLICK = "EXPLORE", "CURRENT", "TIE", "NO_CLICK"

JOB_NAME = "reference"


@dataclass(frozen=True)
class ReferenceConfig:
    """Window sizes of §4 and the DBGD settings; `dbgd` None means DbgdConfig.for_windows(...).
    `click_horizon_ms` None = a request stays known forever (§4 as written); set it to the job's
    --click-horizon to compare with the JVM side for clicks that far from their impression."""

    window_ms: int = DRN_WINDOW_MS
    attribution_window_ms: int = DRN_ATTRIBUTION_WINDOW_MS
    click_horizon_ms: int | None = None
    dbgd: DbgdConfig | None = None
    #: Set: the learner is PDGD (the job's --learner pdgd) instead of DBGD.
    pdgd: PdgdConfig | None = None
    impressions_topic: str = "impressions"
    clicks_topic: str = "clicks"
    #: The job's --max-event-time-skew; applied to records whose Kafka timestamps are given (0 = off).
    max_event_time_skew_ms: int = 0

    def __post_init__(self) -> None:
        if self.window_ms <= 0:
            raise ValueError(f"ReferenceConfig.window_ms must be > 0, got {self.window_ms}")
        if self.attribution_window_ms < 0:
            raise ValueError(
                f"ReferenceConfig.attribution_window_ms must be >= 0, got {self.attribution_window_ms}"
            )
        if self.click_horizon_ms is not None and self.click_horizon_ms < self.attribution_window_ms:
            raise ValueError(
                f"ReferenceConfig.click_horizon_ms ({self.click_horizon_ms}) must be None or >= "
                f"attribution_window_ms ({self.attribution_window_ms})"
            )
        if self.dbgd is None:
            object.__setattr__(
                self, "dbgd", DbgdConfig.for_windows(self.window_ms, self.attribution_window_ms)
            )


@dataclass
class ReferenceResult:
    win_rates: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    model_weights: list[dict[str, Any]] = field(default_factory=list)
    #: (window_start, model_id, reason) of every refused update.
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def window_start_of(event_time: int, window_ms: int) -> int:
    """Start of the tumbling window holding `event_time` (aligned to epoch 0; floor for negatives)."""
    return event_time - event_time % window_ms


def impression_outcome(impression: Mapping[str, Any], clicked_items: Iterable[str]) -> str:
    """EXPLORE if more clicked EXPLORE items than CURRENT ones, CURRENT if fewer, TIE if equal and > 0,
    NO_CLICK if none (§4; models/interleave.credit)."""
    return credit([(slot["item_id"], slot["team"]) for slot in impression["slots"]], clicked_items).value


def _dead_letter(
    topic: str, offset: int, record: Mapping[str, Any], schema: str, reason: str, detail: str
) -> dict[str, Any]:
    raw = serde.encode(schema, record)
    return {
        "source_topic": topic,
        "source_partition": 0,
        "source_offset": offset,
        "raw_key": str(record["request_id"]).encode("utf-8"),
        "raw_value": raw,
        "reason": reason,
        "detail": detail,
        "job": JOB_NAME,
        "created_at": None,
        "raw_value_size": len(raw),
        "raw_value_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _problems(schema: str, topic: str, records: Sequence[Mapping[str, Any]], timestamps: Sequence[int] | None,
              max_skew_ms: int) -> list[tuple[str, str] | None]:
    """(reason, detail) of each record that cannot be used, else None: MALFORMED values first, then
    OUT_OF_RANGE event times (schemas/records.py, the same rules and sentences as the JVM deserializer)."""
    out: list[tuple[str, str] | None] = []
    for i, r in enumerate(records):
        problem = record_problem(schema, dict(r))
        skew = (None if problem is not None or timestamps is None
                else skew_problem(int(r["event_time"]), int(timestamps[i]), max_skew_ms))
        out.append((MALFORMED, f"invalid {topic} record: {problem}") if problem is not None
                   else (OUT_OF_RANGE, skew) if skew is not None else None)
    return out


def dedupe_impressions(
    impressions: Sequence[Mapping[str, Any]], topic: str = "impressions",
    timestamps: Sequence[int] | None = None, max_skew_ms: int = 0,
) -> tuple[dict[str, tuple[int, Mapping[str, Any]]], list[dict[str, Any]]]:
    """request_id -> (input position, impression) of the first impression per request_id in input
    order (models/attribution.py); the rest as DUPLICATE_IMPRESSION dead letters. `timestamps`: the
    records' Kafka timestamps, for the OUT_OF_RANGE rule."""
    problems = _problems("Impression", topic, impressions, timestamps, max_skew_ms)
    index = attribution.index_impressions(
        None if problem else str(imp["request_id"]) for imp, problem in zip(impressions, problems, strict=True)
    )
    kept = {rid: (i, impressions[i]) for rid, i in index.first.items()}
    dead = [
        _dead_letter(topic, i, imp, "Impression", problem[0], problem[1])
        for i, (imp, problem) in enumerate(zip(impressions, problems, strict=True))
        if problem
    ]
    dead += [
        _dead_letter(
            topic,
            i,
            impressions[i],
            "Impression",
            DUPLICATE_IMPRESSION,
            f"Impression.request_id {str(impressions[i]['request_id'])!r} already seen at offset {first}",
        )
        for i, first in index.duplicates
    ]
    return kept, dead


def attribute_clicks(
    impressions_by_request: Mapping[str, tuple[int, Mapping[str, Any]]],
    clicks: Sequence[Mapping[str, Any]],
    attribution_window_ms: int,
    topic: str = "clicks",
    click_horizon_ms: int | None = None,
    timestamps: Sequence[int] | None = None,
    max_skew_ms: int = 0,
) -> tuple[dict[str, set[str]], list[dict[str, Any]]]:
    """request_id -> credited item_ids, and a dead letter for every click that fails a §4 rule.
    `click_horizon_ms`: a click further than this from its impression is UNKNOWN_REQUEST (None = never)."""
    impression_of = {rid: imp for rid, (_, imp) in impressions_by_request.items()}
    problems = _problems("Click", topic, clicks, timestamps, max_skew_ms)
    valid = [i for i, problem in enumerate(problems) if problem is None]
    result = attribution.attribute_clicks(impression_of, [clicks[i] for i in valid], attribution_window_ms,
                                          click_horizon_ms)
    dead = [
        _dead_letter(topic, i, clicks[i], "Click", problem[0], problem[1])
        for i, problem in enumerate(problems) if problem
    ]
    dead += [
        _dead_letter(topic, valid[r.position], clicks[valid[r.position]], "Click", r.reason, r.detail)
        for r in result.refused
    ]
    return result.credited, dead


def window_rows(
    impressions_by_request: Mapping[str, tuple[int, Mapping[str, Any]]],
    credited: Mapping[str, set[str]],
    window_ms: int,
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """(window_start, model_id) -> WinRate rows (without win_rate/decision), one per (version, seed), each
    with the PdgdBatch of its PDGD impressions that have a credited click (partition 0, offset = position)."""
    counts: dict[tuple[int, str, int, int], list[int]] = {}
    clicked: dict[tuple[int, str, int, int], list[tuple[int, int, Mapping[str, Any], set[str]]]] = defaultdict(list)
    for rid, (position, imp) in impressions_by_request.items():
        ws = window_start_of(int(imp["event_time"]), window_ms)
        # One row per explore seed when multileaving (MGD's per-team credit), else per explore_seed.
        for seed, outcome in seed_outcomes(imp["slots"], int(imp["explore_seed"]), imp.get("explore_seeds") or [],
                                           credited.get(rid, set())):
            c = counts.setdefault((ws, str(imp["model_id"]), int(imp["model_version"]), seed), [0, 0, 0, 0, 0])
            c[0] += 1
            c[1 + (EXPLORE, CURRENT, TIE, NO_CLICK).index(outcome.value)] += 1
            if credited.get(rid):
                clicked[(ws, str(imp["model_id"]), int(imp["model_version"]), seed)].append(
                    (0, position, imp, credited[rid]))
    rows: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for (ws, model_id, version, seed), (n, e, cur, ties, none) in sorted(counts.items()):
        rows[(ws, model_id)].append(
            {
                "model_id": model_id,
                "window_start": ws,
                "window_end": ws + window_ms,
                "model_version": version,
                "explore_seed": seed,
                "impressions": n,
                "explore_wins": e,
                "current_wins": cur,
                "ties": ties,
                "no_clicks": none,
                PDGD_BATCH_FIELD: batch_bytes(clicked.get((ws, model_id, version, seed), [])),
            }
        )
    return dict(rows)


def run_reference(
    impressions: Sequence[Mapping[str, Any]],
    clicks: Sequence[Mapping[str, Any]],
    initial_weights: Iterable[Mapping[str, Any]] = (),
    config: ReferenceConfig | None = None,
    impression_timestamps: Sequence[int] | None = None,
    click_timestamps: Sequence[int] | None = None,
) -> ReferenceResult:
    """§4 then §5 over a bounded, on-time input. `initial_weights`: MAJOR ModelWeights records the
    learners start from (one per model_id); a model without one has every row STALE. The records' Kafka
    timestamps, when given, apply cfg.max_event_time_skew_ms (OUT_OF_RANGE)."""
    cfg = config if config is not None else ReferenceConfig()
    assert cfg.dbgd is not None
    kept, dead_impressions = dedupe_impressions(impressions, cfg.impressions_topic, impression_timestamps,
                                                cfg.max_event_time_skew_ms)
    credited, dead_clicks = attribute_clicks(
        kept, clicks, cfg.attribution_window_ms, cfg.clicks_topic, cfg.click_horizon_ms, click_timestamps,
        cfg.max_event_time_skew_ms,
    )
    learners: dict[str, DbgdLearner | PdgdLearner] = {}
    for record in initial_weights:
        lrn = learners.setdefault(str(record["model_id"]), window_learner(str(record["model_id"]), cfg.dbgd, cfg.pdgd))
        lrn.rebase(record)
    result = ReferenceResult(
        dead_letters=sorted(
            dead_impressions + dead_clicks, key=lambda d: (d["source_topic"], d["source_offset"])
        )
    )
    for (ws, model_id), rows in sorted(window_rows(kept, credited, cfg.window_ms).items()):
        lrn = learners.setdefault(model_id, window_learner(model_id, cfg.dbgd, cfg.pdgd))
        out = lrn.on_window(rows)
        result.win_rates.extend(out.win_rates)
        if out.weights is not None:
            result.model_weights.append(out.weights)
        if out.refused is not None:
            result.refused.append((ws, model_id, out.refused))
    return result
