"""When to ask for a major update (design.md §1): every T of event time and/or after N minor updates.

The minor-update job calls `TriggerSchedule.on_window_end` once per decided (model, window) and
publishes the MajorUpdateTrigger record it returns. Everything is event time and data (no clock),
so a replay fires the same triggers with the same ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: DRN's major-update period T_R: one hour.
DRN_MAJOR_PERIOD_MS = 60 * 60_000

SCHEDULE, MINOR_COUNT = "SCHEDULE", "MINOR_COUNT"

#: (topic, partition, start_offset inclusive, end_offset exclusive), as the JVM side reports them.
OffsetRange = tuple[str, int, int, int]


@dataclass(frozen=True)
class TriggerConfig:
    """`every_ms`: fire when window_end crosses a multiple of this (aligned to epoch 0), None = off.
    `every_minor`: fire after this many MINOR versions since the last trigger, None = off."""

    every_ms: int | None = DRN_MAJOR_PERIOD_MS
    every_minor: int | None = None
    impressions_topic: str = "impressions"
    clicks_topic: str = "clicks"

    def __post_init__(self) -> None:
        if self.every_ms is not None and (isinstance(self.every_ms, bool) or self.every_ms <= 0):
            raise ValueError(f"TriggerConfig.every_ms must be > 0 ms or None (off), got {self.every_ms!r}")
        if self.every_minor is not None and (isinstance(self.every_minor, bool) or self.every_minor <= 0):
            raise ValueError(f"TriggerConfig.every_minor must be > 0 or None (off), got {self.every_minor!r}")
        if self.every_ms is None and self.every_minor is None:
            raise ValueError(
                "TriggerConfig: set every_ms, every_minor or both; with neither nothing ever fires"
            )
        if not self.impressions_topic or not self.clicks_topic or self.impressions_topic == self.clicks_topic:
            raise ValueError(
                f"TriggerConfig: impressions_topic {self.impressions_topic!r} and clicks_topic "
                f"{self.clicks_topic!r} must be two different non-empty names"
            )


@dataclass
class _ModelState:
    """Per-model trigger state; what `snapshot` writes."""

    range_start: int | None = None  # event time the next trigger's range starts at
    last_window_end: int | None = None
    last_fire_end: int | None = None
    last_minor_count: int = 0
    minors_since_trigger: int = 0
    #: (topic, partition) -> [start, end) seen since the last trigger.
    pending: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    #: (topic, partition) -> end offset of the last trigger (the next range starts there).
    fired_end: dict[tuple[str, int], int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "range_start": self.range_start,
            "last_window_end": self.last_window_end,
            "last_fire_end": self.last_fire_end,
            "last_minor_count": self.last_minor_count,
            "minors_since_trigger": self.minors_since_trigger,
            "pending": sorted([t, p, s, e] for (t, p), (s, e) in self.pending.items()),
            "fired_end": sorted([t, p, e] for (t, p), e in self.fired_end.items()),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> _ModelState:
        return cls(
            range_start=d["range_start"],
            last_window_end=d["last_window_end"],
            last_fire_end=d["last_fire_end"],
            last_minor_count=int(d["last_minor_count"]),
            minors_since_trigger=int(d["minors_since_trigger"]),
            pending={(str(t), int(p)): [int(s), int(e)] for t, p, s, e in d["pending"]},
            fired_end={(str(t), int(p)): int(e) for t, p, e in d["fired_end"]},
        )


class TriggerSchedule:
    """Major-update trigger schedule for any number of models (state kept per model_id)."""

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = config if config is not None else TriggerConfig()
        self._models: dict[str, _ModelState] = {}

    def last_window_end(self, model_id: str) -> int | None:
        """The end of the newest window recorded for `model_id` (None before the first)."""
        st = self._models.get(model_id)
        return None if st is None else st.last_window_end

    def on_window_end(
        self,
        model_id: str,
        window_start: int,
        window_end: int,
        minor_count: int,
        base_version: int,
        ranges: Iterable[OffsetRange],
    ) -> dict[str, Any] | None:
        """Record one decided window; return a MajorUpdateTrigger record if a trigger fires now.

        `minor_count` is the learner's MINOR versions since the last MAJOR, `base_version` its
        version after this window, `ranges` the (topic, partition, start, end) offsets of the
        impressions and clicks this window read. SCHEDULE wins when both reasons are due.
        """
        st = self._models.setdefault(model_id, _ModelState())
        if window_end <= window_start:
            raise ValueError(
                f"model {model_id}: window_end {window_end} must be > window_start {window_start}"
            )
        if st.last_window_end is not None and window_end <= st.last_window_end:
            raise ValueError(
                f"model {model_id}: window ending {window_end} after one ending {st.last_window_end}; "
                "windows must arrive in event-time order"
            )
        if minor_count < 0:
            raise ValueError(f"model {model_id}: minor_count must be >= 0, got {minor_count}")
        self._add_ranges(model_id, st, ranges)
        if st.range_start is None:
            st.range_start = window_start
        # The learner's count restarts at 0 on a MAJOR: a drop means the minors since then are new.
        new_minors = minor_count - st.last_minor_count if minor_count >= st.last_minor_count else minor_count
        st.minors_since_trigger += new_minors
        st.last_minor_count = minor_count
        st.last_window_end = window_end

        reason = self._due(st, window_end)
        if reason is None:
            return None
        trigger = {
            "model_id": model_id,
            "trigger_id": f"{model_id}-{base_version}-{window_end}",
            "created_at": window_end,
            "reason": reason,
            "base_version": int(base_version),
            "minor_updates_since_major": int(minor_count),
            "event_time_start": st.range_start,
            "event_time_end": window_end,
            "impression_offsets": self._emit_ranges(st, self.config.impressions_topic),
            "click_offsets": self._emit_ranges(st, self.config.clicks_topic),
        }
        st.pending.clear()
        st.range_start = window_end
        st.last_fire_end = window_end
        st.minors_since_trigger = 0
        log.info("model %s: major-update trigger %s (%s)", model_id, trigger["trigger_id"], reason)
        return trigger

    def _due(self, st: _ModelState, window_end: int) -> str | None:
        cfg = self.config
        if cfg.every_ms is not None:
            anchor = st.last_fire_end if st.last_fire_end is not None else st.range_start
            assert anchor is not None
            if window_end // cfg.every_ms > anchor // cfg.every_ms:
                return SCHEDULE
        if cfg.every_minor is not None and st.minors_since_trigger >= cfg.every_minor:
            return MINOR_COUNT
        return None

    def _add_ranges(self, model_id: str, st: _ModelState, ranges: Iterable[OffsetRange]) -> None:
        topics = (self.config.impressions_topic, self.config.clicks_topic)
        for item in ranges:
            topic, partition, start, end = item
            if topic not in topics:
                raise ValueError(
                    f"model {model_id}: offset range of topic {topic!r}; expected one of {topics}"
                )
            if not (0 <= start <= end):
                raise ValueError(
                    f"model {model_id}: offset range {topic}[{partition}] [{start}, {end}) "
                    "needs 0 <= start <= end"
                )
            key = (str(topic), int(partition))
            seen = st.pending.get(key)
            st.pending[key] = (
                [int(start), int(end)] if seen is None else [min(seen[0], start), max(seen[1], end)]
            )

    def _emit_ranges(self, st: _ModelState, topic: str) -> list[dict[str, Any]]:
        """Ranges of `topic` since the last trigger: each partition continues where the last ended."""
        out = []
        for (t, partition), (start, end) in sorted(st.pending.items()):
            if t != topic:
                continue
            begin = min(st.fired_end.get((t, partition), start), end)
            out.append({"topic": t, "partition": partition, "start_offset": begin, "end_offset": end})
            st.fired_end[(t, partition)] = end
        return out

    # --- Flink state -----------------------------------------------------------------------------
    def snapshot(self, model_id: str) -> bytes:
        """Canonical JSON bytes of one model's trigger state (for keyed state)."""
        st = self._models.get(model_id, _ModelState())
        return json.dumps(st.to_json(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    def restore(self, model_id: str, data: bytes) -> None:
        try:
            self._models[model_id] = _ModelState.from_json(json.loads(bytes(data).decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"model {model_id}: corrupt trigger-schedule snapshot: {e!r}") from None

    def models(self) -> Sequence[str]:
        return sorted(self._models)
