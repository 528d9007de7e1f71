"""Per-model win-rate and decision metrics for the minor-update job's DBGD operator (Flink metrics: web UI,
REST API, and Prometheus with deploy/flink/metrics-prometheus.yaml).

Use in a PyFlink function: `self.metrics = WinRateMetrics(runtime_context.get_metrics_group())` in
`open`, then `self.metrics.record(win_rate_record)` for every WinRate emitted. The values of the last row
(win-rate in per mille, -1 while undefined; wins; impressions; version; window end) are counters moved to
the new value, not Python gauges: a gauge is a callback into Python, and in thread mode Flink's metric
query thread called it after a cancelled job's interpreter state was gone, which crashed the whole
TaskManager (SIGSEGV in take_gil; found on the session cluster, issue 12). A counter lives in the JVM.
`submit` runs process mode, where a counter is reported once updated: each is updated by 0 when registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("ACCEPT", "REJECT", "STALE", "PROBATION")


LAST_ROW = ("win_rate_permille", "explore_wins", "current_wins", "impressions", "model_version", "window_end")


@dataclass
class _ModelMetrics:
    #: name -> (counter, the value it shows now)
    last_row: dict[str, list[Any]] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)


class WinRateMetrics:
    """Registers, per model_id on first sight, the last window row's values and counters of decisions."""

    def __init__(self, metric_group: Any) -> None:
        self.group = metric_group
        self.models: dict[str, _ModelMetrics] = {}

    def _model(self, model_id: str) -> _ModelMetrics:
        state = self.models.get(model_id)
        if state is None:
            state = _ModelMetrics()
            g = self.group.add_group("model", model_id)
            state.last_row = {name: [g.counter(name), 0] for name in LAST_ROW}
            self._set(state, "win_rate_permille", -1)
            self._set(state, "model_version", -1)
            decisions = g.add_group("decisions")
            state.counters = {d: decisions.counter(d.lower()) for d in DECISIONS}
            # In process mode a counter reaches Flink with its first update (Beam reports updated cells only):
            # one that stays 0 (no PROBATION yet, no explore win) would be missing from every scrape, and a
            # dashboard's panel empty instead of 0.
            for counter in [*(held[0] for held in state.last_row.values()), *state.counters.values()]:
                counter.inc(0)
            self.models[model_id] = state
        return state

    @staticmethod
    def _set(state: _ModelMetrics, name: str, value: int) -> None:
        held = state.last_row[name]
        delta = value - held[1]
        if delta > 0:
            held[0].inc(delta)
        elif delta < 0:
            held[0].dec(-delta)
        held[1] = value

    def record(self, row: Mapping[str, Any]) -> None:
        state = self._model(str(row["model_id"]))
        rate = row.get("win_rate")
        self._set(state, "win_rate_permille", -1 if rate is None else round(1000 * float(rate)))
        for name in ("explore_wins", "current_wins", "impressions", "model_version", "window_end"):
            self._set(state, name, int(row[name]))
        decision = str(row["decision"])
        if decision in state.counters:
            state.counters[decision].inc()
