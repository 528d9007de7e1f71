"""Fixed placement, the greedy per-slot rule and the trained DQN on the same held-out sessions, per seed;
means over seeds with 95% t-intervals, and the DQN's paired gain over fixed placement per seed.

Per session: revenue (expected ad revenue summed over its pages), engagement (expected organic clicks
summed), length (pages) and combined = w_revenue · revenue + w_engagement · engagement (undiscounted:
what the session earned). Every mixer meets the same sessions (evaluation stream EVAL_STREAM + seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.drn import DrnQNetwork
from models.mixer.environment import MixerEnvironment
from models.mixer.pipeline import EVAL_STREAM, MixerSetup, check_fits
from models.mixer.policies import FixedPlacement, GreedyPerSlot, Mixer, QMixer
from models.mixer.rollout import rollout
from models.simulator.world import World

T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
METRICS = ("revenue", "engagement", "length", "combined", "ads_per_page")


def interval(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (nan for one value)."""
    x = np.asarray(xs, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(T_975.get(x.size - 1, 1.96) * x.std(ddof=1) / np.sqrt(x.size))


@dataclass
class MixerResult:
    name: str
    per_seed: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "per_seed": self.per_seed,
                **{m: dict(zip(("mean", "half_width"), interval(v), strict=True)) for m, v in self.per_seed.items()}}


def baselines(fixed_slots: tuple[int, ...] = (3, 7)) -> list[Mixer]:
    return [FixedPlacement(fixed_slots), GreedyPerSlot()]


def evaluate_seeds(world: World, setup: MixerSetup, networks: dict[int, DrnQNetwork], seeds: Sequence[int],
                   sessions: int, fixed_slots: tuple[int, ...] = (3, 7), extra: Sequence[Mixer] = (),
                   on_seed: Callable[[int], None] | None = None) -> list[MixerResult]:
    """Per seed: the baselines, `extra` mixers and that seed's DQN on `sessions` evaluation sessions."""
    results: dict[str, MixerResult] = {}
    for seed in seeds:
        env = MixerEnvironment(world, setup.env, seed=seed)
        check_fits(networks[seed], env)
        mixers = [*baselines(fixed_slots), *extra, QMixer(networks[seed])]
        for mixer in mixers:
            totals, _ = rollout(env, mixer, sessions, EVAL_STREAM + seed)
            r = results.setdefault(mixer.name, MixerResult(mixer.name))
            for m in METRICS:
                r.per_seed[m].append(float(getattr(totals, m).mean()))
        if on_seed is not None:
            on_seed(seed)
    return list(results.values())


def gain(results: list[MixerResult], over: str, of: str = "dueling DQN") -> list[float]:
    """Per seed: combined of `of` minus combined of `over` (paired: the same sessions)."""
    by = {r.name: r for r in results}
    return [a - b for a, b in zip(by[of].per_seed["combined"], by[over].per_seed["combined"], strict=True)]


def format_table(results: list[MixerResult], n_seeds: int) -> str:
    def cell(v: list[float], digits: int) -> str:
        m, h = interval(v)
        return f"{m:.{digits}f} ± {h:.{digits}f}" if np.isfinite(h) else f"{m:.{digits}f}"

    head = f"{'mixer':<18} {'revenue':>15} {'engagement':>15} {'session length':>15} {'combined':>15} {'ads/page':>13}"
    lines = [f"per session, mean over {n_seeds} seed(s) ± 95% t-interval half-width", head, "-" * len(head)]
    for r in results:
        p = r.per_seed
        lines.append(f"{r.name:<18} {cell(p['revenue'], 2):>15} {cell(p['engagement'], 2):>15} "
                     f"{cell(p['length'], 2):>15} {cell(p['combined'], 2):>15} {cell(p['ads_per_page'], 2):>13}")
    return "\n".join(lines)
