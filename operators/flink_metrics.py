"""Per-model win-rate and decision metrics for the minor-update job's DBGD operator (Flink metrics: web UI,
REST API, and Prometheus with deploy/flink/metrics-prometheus.yaml).

Use in a PyFlink function: `self.metrics = WinRateMetrics(runtime_context.get_metrics_group())` in
`open`, then `self.metrics.record(win_rate_record)` for every WinRate emitted. PyFlink gauges carry
integers, so the win-rate is reported in per mille (-1 while undefined).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DECISIONS = ("ACCEPT", "REJECT", "STALE")


@dataclass
class _ModelMetrics:
    win_rate_permille: int = -1
    explore_wins: int = 0
    current_wins: int = 0
    impressions: int = 0
    model_version: int = -1
    window_end: int = 0
    counters: dict[str, Any] = field(default_factory=dict)


class WinRateMetrics:
    """Registers, per model_id on first sight, gauges of the last window row and counters of decisions."""

    def __init__(self, metric_group: Any) -> None:
        self.group = metric_group
        self.models: dict[str, _ModelMetrics] = {}

    def _model(self, model_id: str) -> _ModelMetrics:
        state = self.models.get(model_id)
        if state is None:
            state = _ModelMetrics()
            g = self.group.add_group("model", model_id)
            for name in ("win_rate_permille", "explore_wins", "current_wins", "impressions", "model_version",
                         "window_end"):
                g.gauge(name, lambda s=state, n=name: int(getattr(s, n)))
            decisions = g.add_group("decisions")
            state.counters = {d: decisions.counter(d.lower()) for d in DECISIONS}
            self.models[model_id] = state
        return state

    def record(self, row: Mapping[str, Any]) -> None:
        state = self._model(str(row["model_id"]))
        rate = row.get("win_rate")
        state.win_rate_permille = -1 if rate is None else round(1000 * float(rate))
        state.explore_wins = int(row["explore_wins"])
        state.current_wins = int(row["current_wins"])
        state.impressions = int(row["impressions"])
        state.model_version = int(row["model_version"])
        state.window_end = int(row["window_end"])
        decision = str(row["decision"])
        if decision in state.counters:
            state.counters[decision].inc()
