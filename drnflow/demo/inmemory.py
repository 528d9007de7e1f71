"""The DRN loop without Kafka or Flink: simulator -> Ranker -> clicks -> per-window DBGD, in one process.

Used by the demo for its frozen-model control (same users, weights never move) and to choose demo
settings quickly. It credits each impression with models.interleave.seed_outcomes and hands the learner the
same rows the Flink job would, at the end of each window (no attribution delay: the idealised loop).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from models.dbgd import DbgdConfig, DbgdLearner
from models.interleave import Outcome, seed_outcomes
from models.major.offline_start import log_range, major_record
from models.major.update import BaseModel, MajorUpdateConfig, run_update
from models.pdgd_learner import PDGD_BATCH_FIELD, PDGD_FIELD, PdgdConfig, PdgdLearner, batch_bytes
from models.perturbation import ExploreParams
from operators.pdgd_ranker import PdgdRanker
from operators.ranker import Ranker, RankerConfig


class GreedyPolicy:
    """Rank by the served model's Q alone (no exploration): how a model is judged offline."""

    def __init__(self, ranker: Ranker) -> None:
        self.ranker = ranker

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Any, k: int) -> dict[str, Any]:
        from models.simulator.policies import impression_record

        served = self.ranker.served
        assert served is not None
        q = served.scorer.q(np.asarray(state_features, np.float32),
                            np.stack([np.asarray(f, np.float32) for _, f in candidates]))
        order = [int(i) for i in np.lexsort((np.arange(len(q)), -q))]
        record = impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                   model_id=served.model_id, order=order, candidates=candidates,
                                   state_features=state_features, k=k)
        record["model_version"] = served.version
        return record


class GreedyRerankPolicy:
    """DRN's top M by the served Q, ordered by the served generator's greedy decoding (no exploration): how a
    re-ranking generator is judged offline against DRN's own order (GreedyPolicy) on the same requests."""

    def __init__(self, ranker: Ranker, reranker: Any, top_m: int) -> None:
        self.ranker = ranker
        self.reranker = reranker
        self.top_m = top_m

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Any, k: int) -> dict[str, Any]:
        from models.simulator.policies import impression_record

        served = self.ranker.served
        assert served is not None
        state = np.asarray(state_features, np.float32)
        actions = np.stack([np.asarray(f, np.float32) for _, f in candidates])
        q = served.scorer.q(state, actions)
        top = [int(i) for i in np.lexsort((np.arange(len(q)), -q))][: self.top_m]
        n = min(k, len(top))
        order = self.reranker.rerank(state, actions[top], q[top], n).order
        record = impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                   model_id=self.reranker.config.model_id, order=[top[i] for i in order],
                                   candidates=candidates, state_features=state_features, k=n)
        record["model_version"] = self.reranker.version or 0
        return record


@dataclass
class LoopStats:
    windows: list[dict[str, Any]] = field(default_factory=list)
    impressions: int = 0
    clicks: int = 0
    final_weights: dict[str, Any] | None = None
    #: Slots shown over all impressions: CTR is clicks per shown slot.
    shown_slots: int = 0

    @property
    def ctr(self) -> float:
        return self.clicks / self.shown_slots if self.shown_slots else 0.0


Judge = Callable[[Any, Any, list[Any]], dict[str, float]]
#: Both learn from the window's count rows; PDGD from the PdgdBatch its rows carry (clicked impressions).
Learner = DbgdLearner | PdgdLearner


class MajorUpdates:
    """The live chain's major update, in process: every `every_ms` of event time, the served version is
    retrained on the log since the last major update (`run_update`, the served version as base), gated,
    and when it passes published as a MAJOR above every version, which the ranker serves and the learner
    rebases on. The Flink path does the same with triggers and `drnflow major-update --follow`."""

    def __init__(self, model_id: str, every_ms: int, config: MajorUpdateConfig,
                 explore: ExploreParams | None = None, judge: Judge | None = None) -> None:
        """`judge(candidate, base, steps)`, when given, scores both networks on the simulator's truth for the
        update's steps; its dict joins the outcome (how often the gate agrees with the truth)."""
        if every_ms <= 0:
            raise ValueError(f"MajorUpdates.every_ms must be > 0, got {every_ms}")
        self.model_id = model_id
        self.every_ms = every_ms
        self.config = config
        self.explore = explore
        self.judge = judge
        self.outcomes: list[dict[str, Any]] = []
        self._steps: list[Any] = []
        self._since: int | None = None

    def observe(self, step: Any) -> None:
        t = int(step.impression["event_time"])
        self._since = t if self._since is None else self._since
        self._steps.append(step)

    def due(self, now_ms: int) -> bool:
        return self._since is not None and now_ms - self._since >= self.every_ms

    def update(self, now_ms: int, ranker: Ranker, learner: Learner | None) -> dict[str, Any] | None:
        """Retrain on the steps seen since the last update; the published MAJOR record, or None (gate)."""
        served = ranker.served
        assert served is not None, "a major update needs a served version to start from"
        steps, self._steps, self._since = self._steps, [], now_ms
        data_log = log_range(self.model_id, steps)
        base = BaseModel(served.version, served.flat, served.layout)
        outcome = run_update(data_log, base, self.config)
        top = max(served.version, learner.next_version - 1 if learner is not None else 0)
        summary: dict[str, Any] = {"at": now_ms, "base_version": served.version, "status": outcome.status,
                                   "reason": outcome.reason, "version": None, "gate": outcome.report.get("gate")}
        if self.judge is not None and outcome.network is not None:
            summary["truth"] = self.judge(outcome.network, base.network(), steps)
        record = None
        if outcome.publish:
            record = major_record(outcome, data_log, version=top + 1, parent_version=served.version,
                                  created_at=now_ms, explore=self.explore)
            ranker.apply_weights(record)
            if learner is not None:
                learner.rebase(record)
            summary["version"] = top + 1
        self.outcomes.append(summary)
        return record

    def judged_online(self, verdict: Any) -> None:
        """A probation verdict on a version this published: whether the online test kept it joins its outcome."""
        for summary in self.outcomes:
            if summary["version"] == verdict.version:
                summary["probation"] = {"rolled_back": verdict.rolled_back, "win_rate": verdict.win_rate,
                                        "version_wins": verdict.version_wins, "parent_wins": verdict.parent_wins}


def run_loop(sim: Any, ranker: Ranker, learner: Learner | None, impressions: int, window_ms: int,
             on_window: Callable[[dict[str, Any]], None] | None = None,
             on_step: Callable[[Any], None] | None = None, majors: MajorUpdates | None = None) -> LoopStats:
    """Drive `sim` (whose policy is `ranker`) for n impressions; learn per window unless learner is None,
    and retrain by `majors` (when given) at the first window end after each of its periods.
    `on_step` sees every simulator step (impression, clicks, truth, user, candidates) as it happens."""
    stats = LoopStats()
    counts: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    current_window: int | None = None
    window_clicks = window_imps = 0
    pdgd_clicked: dict[int, list[tuple[int, int, dict[str, Any], list[str]]]] = defaultdict(list)

    def close(window: int) -> None:
        nonlocal window_clicks, window_imps
        rows = [{"model_id": ranker.config.model_id, "window_start": window, "window_end": window + window_ms,
                 "model_version": v, "explore_seed": s, "impressions": c[0], "explore_wins": c[1],
                 "current_wins": c[2], "ties": c[3], "no_clicks": c[4],
                 PDGD_BATCH_FIELD: batch_bytes(pdgd_clicked.get(v, []))} for (v, s), c in sorted(counts.items())]
        summary: dict[str, Any] = {"window_start": window, "impressions": window_imps, "clicks": window_clicks,
                                   "explore_wins": sum(r["explore_wins"] for r in rows),
                                   "current_wins": sum(r["current_wins"] for r in rows),
                                   "version": ranker.version, "accepted": False}
        if learner is not None and rows:
            result = learner.on_window(rows)
            if result.verdict is not None and majors is not None:
                majors.judged_online(result.verdict)
            if result.weights is not None:
                ranker.apply_weights(result.weights)
                stats.final_weights = result.weights
                summary["accepted" if result.weights["kind"] == "MINOR" else "rolled_back"] = True
                summary["version"] = result.weights["version"]
        if majors is not None and majors.due(window + window_ms):
            record = majors.update(window + window_ms, ranker, learner)
            if record is not None:
                stats.final_weights = record
                summary["major"] = record["version"]
                summary["version"] = record["version"]
        stats.windows.append(summary)
        if on_window:
            on_window(summary)
        counts.clear()
        pdgd_clicked.clear()
        window_clicks = window_imps = 0

    for step in sim.run(impressions):
        imp = step.impression
        window = imp["event_time"] - imp["event_time"] % window_ms
        if current_window is not None and window != current_window:
            close(current_window)
        current_window = window
        for seed, outcome in seed_outcomes(imp["slots"], int(imp["explore_seed"]), imp.get("explore_seeds") or [],
                                           [c["item_id"] for c in step.clicks]):
            c = counts[(int(imp["model_version"]), seed)]
            c[0] += 1
            c[{Outcome.EXPLORE: 1, Outcome.CURRENT: 2, Outcome.TIE: 3, Outcome.NO_CLICK: 4}[outcome]] += 1
        if imp.get(PDGD_FIELD) is not None and step.clicks:  # the JVM's PdgdBatch, built as the job does
            pdgd_clicked[int(imp["model_version"])].append((0, stats.impressions, imp,
                                                            [c["item_id"] for c in step.clicks]))
        window_imps += 1
        window_clicks += len(step.clicks)
        stats.impressions += 1
        stats.clicks += len(step.clicks)
        stats.shown_slots += len(imp["slots"])
        if majors is not None:
            majors.observe(step)
        if on_step is not None:
            on_step(step)
    if current_window is not None:
        close(current_window)
    return stats


def make_learner(model_id: str, major: dict[str, Any], alpha: float, eta: float, window_ms: int,
                 attribution_ms: int, confidence: float | None = None) -> DbgdLearner:
    learner = DbgdLearner(model_id, DbgdConfig.for_windows(window_ms, attribution_ms, alpha=alpha, eta=eta,
                                                           confidence=confidence))
    learner.rebase(major)
    return learner


def make_pdgd_ranker(model_id: str, major: dict[str, Any], temperature: float, seed: int) -> PdgdRanker:
    """A Plackett–Luce sampling ranker serving `major`."""
    ranker = PdgdRanker(RankerConfig(model_id=model_id, base_seed=seed), temperature=temperature)
    ranker.apply_weights(major)
    return ranker


def make_pdgd(model_id: str, major: dict[str, Any], config: PdgdConfig, seed: int) -> tuple[PdgdRanker, PdgdLearner]:
    """A Plackett–Luce sampling ranker and its PDGD learner, both serving `major`."""
    ranker = make_pdgd_ranker(model_id, major, config.temperature, seed)
    learner = PdgdLearner(model_id, config)
    learner.rebase(major)
    return ranker, learner


def make_ranker(model_id: str, major: dict[str, Any], alpha: float, seed: int, n_explore: int = 1,
                round_ms: int | None = None) -> Ranker:
    """A ranker serving `major`; with n_explore > 1 it multileaves that many explore lists (MGD). `round_ms`
    (default the ranker's) is how long one explore seed, or one probation round, lasts."""
    config = RankerConfig(model_id=model_id, alpha=alpha, base_seed=seed, n_explore=n_explore)
    ranker = Ranker(config if round_ms is None else replace(config, round_ms=round_ms))
    ranker.apply_weights(major)
    return ranker
