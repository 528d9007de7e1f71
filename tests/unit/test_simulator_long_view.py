"""The simulator's long view per click: seeded, exact in expectation, and drawn from its own stream so
every existing output of every seed stays as it was."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from models.simulator import Simulator, SimulatorConfig, World, WorldConfig
from models.simulator.click_models import click_model
from models.simulator.completion import MFConfig
from models.simulator.drift import DriftConfig
from models.simulator.long_view import LongViewConfig
from models.simulator.policies import RandomPolicy
from tests.unit.test_simulator import synthetic_movielens


@pytest.fixture(scope="module")
def world() -> World:
    cfg = WorldConfig(seed=3, n_candidates=20, truth_mf=MFConfig(rank=2, reg=1.0, iters=8, seed=3))
    return World.build(cfg, synthetic_movielens())


def _steps(world: World, seed: int, model: str, drift: str = "none", **kw: object) -> list:  # type: ignore[type-arg]
    cfg = SimulatorConfig(seed=seed, click_model=model, k=5, drift=DriftConfig(kind=drift), **kw)  # type: ignore[arg-type]
    return list(Simulator(world, RandomPolicy(seed=seed), cfg).run(200))


def _digest(steps: list) -> str:  # type: ignore[type-arg]
    h = hashlib.sha256()
    for s in steps:
        h.update(json.dumps([s.impression, s.clicks, [tuple(t) for t in s.truth], s.is_return, s.user,
                             list(s.candidates)], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(("seed", "model", "drift"), [
    (0, "navigational", "none"),
    (3, "pbm", "none"),
    (1, "informational", "news"),
])
def test_long_views_leave_every_existing_output_unchanged(world: World, seed: int, model: str, drift: str) -> None:
    """When long views came (b3512cb) this compared digests pinned from the simulator before them; those are
    of one machine's floats (OpenBLAS picks its kernels by CPU, and the world's truth is a BLAS product), so
    they do not hold on another CPU. What holds on every CPU is why they were equal: arrivals, candidates,
    clicks and delays come from the seed's first four SeedSequence children, as before, and never read the
    long-view stream (the fifth): swapping that stream for an unrelated one changes nothing else."""
    steps = _steps(world, seed, model, drift)
    cfg = SimulatorConfig(seed=seed, click_model=model, k=5, drift=DriftConfig(kind=drift))  # type: ignore[arg-type]
    swapped = Simulator(world, RandomPolicy(seed=seed), cfg)
    swapped._long_view_rng = np.random.default_rng(987_654_321)
    swapped_steps = list(swapped.run(200))
    assert _digest(swapped_steps) == _digest(steps)
    assert [s.long_views for s in swapped_steps] != [s.long_views for s in steps], "the swap reached the draws"
    never = _steps(world, seed, model, drift, long_view=LongViewConfig((0.0,) * 5))
    assert _digest(never) == _digest(steps) and all(not any(s.long_views) for s in never)
    first_four = [c.spawn_key for c in np.random.SeedSequence(seed).spawn(5)[:4]]
    assert first_four == [c.spawn_key for c in np.random.SeedSequence(seed).spawn(4)]
    assert all(len(s.long_views) == len(s.clicks) for s in steps)
    assert any(any(s.long_views) for s in steps)
    assert [s.long_views for s in steps] == [s.long_views for s in _steps(world, seed, model, drift)]


def test_long_view_probabilities_are_exact() -> None:
    config, model = LongViewConfig(), click_model("navigational")
    grades = [4, 1, 3, 0, 2]
    rng = np.random.default_rng(0)
    counts = np.zeros(len(grades))
    n = 20_000
    for _ in range(n):
        clicked = model.sample(grades, rng)
        flags = config.sample([grades[p] for p in clicked], rng)
        counts[[p for p, f in zip(clicked, flags, strict=True) if f]] += 1
    assert np.abs(counts / n - config.probabilities(model, grades)).max() < 0.015
    with pytest.raises(ValueError, match="p_by_grade"):
        LongViewConfig((0.5, 2.0, 0.1, 0.1, 0.1))
