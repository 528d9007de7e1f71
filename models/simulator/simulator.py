"""The user simulator: one `step()` = one user arrives, a policy ranks candidates, the click model
clicks. Pure (no Kafka, no clock): the producer loop in drnflow/commands/simulate.py only ships
what this returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from models.candidates import Candidates
from models.simulator.arrivals import DEFAULT_START_MS, ArrivalConfig, Arrivals, satisfaction
from models.simulator.click_models import ClickModel, click_model
from models.simulator.drift import DriftConfig, NewsDrift
from models.simulator.long_view import LongViewConfig
from models.simulator.policies import RankingPolicy
from models.simulator.world import World

ATTRIBUTION_WINDOW_MS = 30 * 60 * 1000


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 0
    click_model: str = "navigational"
    k: int = 10
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    first_click_delay_s: float = 15.0  # mean of the exponential part; 2 s are always added
    next_click_delay_s: float = 20.0
    max_click_delay_s: float = 25 * 60.0  # clicks stay well inside the 30-min attribution window
    #: Satisfied users come back sooner (DRN's user activeness). Off, the request stream (who arrives
    #: when) is the same whatever the policy, which a side-by-side comparison of policies needs.
    return_visits: bool = True
    #: A world that changes (models/simulator/drift.py); kind "none" keeps it static.
    drift: DriftConfig = field(default_factory=DriftConfig)
    #: Whether each click is a long view (models/simulator/long_view.py); its own stream, nothing else moves.
    long_view: LongViewConfig = field(default_factory=LongViewConfig)

    def __post_init__(self) -> None:
        click_model(self.click_model)  # raises on an unknown name
        if self.k < 1:
            raise ValueError(f"SimulatorConfig.k must be >= 1, got {self.k}")
        if self.seed < 0:
            raise ValueError(f"SimulatorConfig.seed must be >= 0, got {self.seed}")
        if not (self.first_click_delay_s >= 0 and self.next_click_delay_s >= 0):
            raise ValueError("SimulatorConfig click delays must be >= 0 seconds")
        if not 2.0 <= self.max_click_delay_s < ATTRIBUTION_WINDOW_MS / 1000:
            raise ValueError(
                f"SimulatorConfig.max_click_delay_s must be in [2, 1800) s, got {self.max_click_delay_s}"
            )


class TruthRow(NamedTuple):
    request_id: str
    item_id: str
    position: int
    grade: int


@dataclass(frozen=True)
class SimStep:
    impression: dict[str, Any]
    clicks: list[dict[str, Any]]
    truth: list[TruthRow]
    is_return: bool
    #: The user's index in the world and the candidates' item indices (what nDCG over the candidates needs).
    user: int = -1
    candidates: tuple[int, ...] = ()
    #: One flag per click, in `clicks`' order: watched past the dwell threshold (not sent to Kafka).
    long_views: tuple[bool, ...] = ()


class Simulator:
    """Simulated users of `world` meeting `policy`; deterministic for a given seed and policy."""

    def __init__(self, world: World, policy: RankingPolicy, config: SimulatorConfig | None = None) -> None:
        self.world = world
        self.policy = policy
        self.config = config or SimulatorConfig()
        self.click_model: ClickModel = click_model(self.config.click_model)
        # spawn(5)'s first four children are spawn(4)'s: the long views' stream leaves the others as they were
        arr_ss, cand_ss, click_ss, delay_ss, long_view_ss = np.random.SeedSequence(self.config.seed).spawn(5)
        self.arrivals = Arrivals(world.ml, self.config.arrivals, np.random.default_rng(arr_ss),
                                 returns=self.config.return_visits)
        self._cand_rng = np.random.default_rng(cand_ss)
        self._click_rng = np.random.default_rng(click_ss)
        self._delay_rng = np.random.default_rng(delay_ss)
        self._long_view_rng = np.random.default_rng(long_view_ss)
        self.steps = 0
        self.total_clicks = 0
        anchor = self.config.drift.start_ms
        anchor = self.config.arrivals.start_ms if anchor is None else anchor
        self.drift = NewsDrift(world.ml, self.config.drift, anchor) if self.config.drift.kind == "news" else None

    def request_id(self, n: int) -> str:
        """Unique per (seed, start time, n): a run started later (`simulate --continue`) must not reuse the
        request ids of the run before it, or every impression of it is a DUPLICATE_IMPRESSION."""
        start = self.config.arrivals.start_ms
        run = "" if start == DEFAULT_START_MS else f"t{start}-"
        return f"s{self.config.seed}-{run}{n:010d}"

    def step(self) -> SimStep:
        cfg, world = self.config, self.world
        event_time, user, is_return = self.arrivals.next()
        request_id = self.request_id(self.steps)
        self.steps += 1
        drift = self.drift
        cands = world.candidates(self._cand_rng, None if drift is None else self._live(event_time))
        state, actions = world.features(
            user, cands, event_time=event_time, activeness=float(self.arrivals.activeness[user]),
            item_age=None if drift is None else drift.age_fraction(cands, event_time),
        )
        item_ids = world.ml.item_ids
        user_id = world.ml.user_ids[user]
        cand_list = cands.tolist()
        impression = self.policy.rank(
            request_id, user_id, event_time, state, Candidates(list(map(item_ids.__getitem__, cand_list)), actions),
            cfg.k,
        )
        shown = [str(s["item_id"]) for s in impression["slots"]]
        item_index = world.item_index
        idx = np.array([item_index[item] for item in shown], dtype=np.int64)
        if drift is None:
            grades = world.grades[user, idx].tolist()
        else:
            grades = drift.grades(world.grades[user, idx], idx, event_time).tolist()
        clicked = self.click_model.sample(grades, self._click_rng)
        click_times = self._click_times(event_time, len(clicked))
        clicks = [
            {"request_id": request_id, "item_id": shown[pos], "event_time": t, "user_id": user_id}
            for pos, t in zip(clicked, click_times, strict=True)
        ]
        self.total_clicks += len(clicks)
        session_end = click_times[-1] if click_times else event_time
        self.arrivals.feedback(user, session_end, satisfaction([grades[p] for p in clicked]))
        new = tuple.__new__  # a TruthRow without its Python-level __new__ (the same tuple)
        truth = [new(TruthRow, (request_id, item, pos, g))
                 for pos, (item, g) in enumerate(zip(shown, grades, strict=True))]
        long_views = cfg.long_view.sample([grades[p] for p in clicked], self._long_view_rng)
        return SimStep(impression, clicks, truth, is_return, int(user), tuple(cand_list), long_views)

    def _live(self, event_time: int) -> npt.NDArray[np.bool_]:
        assert self.drift is not None
        return self.drift.live(event_time, self.world.config.n_candidates)

    def _click_times(self, event_time: int, n: int) -> list[int]:
        """Increasing click times: 2 s + Exp(first) after the impression, then + Exp(next) each."""
        if n == 0:
            return []
        cfg = self.config
        gaps = self._delay_rng.exponential(1.0, size=n).tolist()
        # the float64 ops numpy did (a multiply, an add, a running sum, a min), in that order, on Python floats
        nxt, cap = cfg.next_click_delay_s, cfg.max_click_delay_s
        offset = 2.0 + gaps[0] * cfg.first_click_delay_s
        # strictly after the impression, non-decreasing, within the window (cap keeps ties possible)
        times = [event_time + int(min(offset, cap) * 1000)]
        for gap in gaps[1:]:
            offset += 1.0 + gap * nxt
            times.append(event_time + int(min(offset, cap) * 1000))
        return times

    def run(self, n: int) -> Iterator[SimStep]:
        for _ in range(n):
            yield self.step()
