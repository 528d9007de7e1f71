"""The in-memory DRN loop behind the demo's frozen control: seeded, and versions move only on ACCEPT."""

from __future__ import annotations

import pytest
import torch

from drnflow.demo.inmemory import GreedyPolicy, make_learner, make_ranker, run_loop
from models.initial_model import initial_drn_record as initial_major
from models.simulator import Simulator, SimulatorConfig, World, WorldConfig
from tests.unit.test_simulator import synthetic_movielens

WINDOW_MS = 60_000


@pytest.fixture(scope="module")
def world() -> World:
    torch.set_num_threads(1)
    return World.build(WorldConfig(seed=3, n_candidates=30), synthetic_movielens(3))


def _run(world: World, learn: bool, n: int = 400) -> tuple[list[dict[str, object]], bytes]:
    major = initial_major("drn", world.state_dim, world.action_dim, 3, created_at=0)
    ranker = make_ranker("drn", major, alpha=0.3, seed=3)
    learner = make_learner("drn", major, 0.3, 1.0, WINDOW_MS, 10 * WINDOW_MS) if learn else None
    sim = Simulator(world, ranker, SimulatorConfig(seed=3, click_model="pbm"))
    stats = run_loop(sim, ranker, learner, n, WINDOW_MS)
    served = ranker.served
    assert served is not None
    return stats.windows, served.flat.tobytes()


def test_initial_major_is_seeded() -> None:
    a = initial_major("drn", 16, 32, 3, created_at=0)
    assert a == initial_major("drn", 16, 32, 3, created_at=0)
    assert a["weights"] != initial_major("drn", 16, 32, 4, created_at=0)["weights"]
    assert (a["version"], a["kind"]) == (1, "MAJOR")


def test_loop_is_repeatable_and_versions_move_only_on_accept(world: World) -> None:
    windows, weights = _run(world, learn=True)
    assert (windows, weights) == _run(world, learn=True)
    assert len(windows) > 3
    version = 1
    for w in windows:
        version += int(bool(w["accepted"]))
        assert w["version"] == version
        assert w["impressions"] > 0
    assert sum(int(w["impressions"]) for w in windows) == 400  # type: ignore[misc]


def test_frozen_control_never_moves(world: World) -> None:
    windows, weights = _run(world, learn=False)
    major = initial_major("drn", world.state_dim, world.action_dim, 3, created_at=0)
    assert all(w["version"] == 1 and not w["accepted"] for w in windows)
    import numpy as np

    from models.weights import parse_model_weights_record

    assert weights == np.asarray(parse_model_weights_record(major)[0], np.float32).tobytes()


def test_greedy_policy_ranks_by_q_without_exploration(world: World) -> None:
    major = initial_major("drn", world.state_dim, world.action_dim, 3, created_at=0)
    ranker = make_ranker("drn", major, alpha=0.3, seed=3)
    sim = Simulator(world, GreedyPolicy(ranker), SimulatorConfig(seed=3))
    imp = sim.step().impression
    assert imp["model_version"] == 1 and len(imp["slots"]) == 10
    assert {s["team"] for s in imp["slots"]} == {"CURRENT"}


def test_the_per_step_hook_sees_every_step_and_ctr_counts_shown_slots(world: World) -> None:
    major = initial_major("drn", world.state_dim, world.action_dim, 3, created_at=0)
    ranker = make_ranker("drn", major, alpha=0.3, seed=3)
    sim = Simulator(world, ranker, SimulatorConfig(seed=3, click_model="pbm", k=4))
    seen: list[object] = []
    stats = run_loop(sim, ranker, None, 50, WINDOW_MS, on_step=seen.append)
    assert len(seen) == 50 and stats.shown_slots == 200
    assert stats.ctr == stats.clicks / 200


def test_mgd_loop_has_one_row_per_explore_list_and_moves_to_the_mean_of_the_winners(world: World) -> None:
    """The in-memory loop with a multileaving ranker (MGD): each window has a row per explore seed, and a
    MINOR carries every accepted seed of its window."""
    from models.interleave import Method

    major = initial_major("drn", world.state_dim, world.action_dim, 3, created_at=0)
    ranker = make_ranker("drn", major, alpha=0.3, seed=3, n_explore=3)
    assert ranker.config.method is Method.MULTILEAVE
    learner = make_learner("drn", major, 0.3, 1.0, WINDOW_MS, 10 * WINDOW_MS)
    rows_seen: list[list[dict[str, object]]] = []
    minors: list[dict[str, object]] = []
    decide = learner.on_window

    def watched(rows: list[dict[str, object]]) -> object:
        rows_seen.append(list(rows))
        result = decide(rows)
        if result.weights is not None:
            minors.append(result.weights)
        return result

    learner.on_window = watched  # type: ignore[method-assign]
    sim = Simulator(world, ranker, SimulatorConfig(seed=3, click_model="pbm"))
    run_loop(sim, ranker, learner, 600, WINDOW_MS)
    assert rows_seen and all(len({(r["model_version"], r["explore_seed"]) for r in rows}) >= 3 for rows in rows_seen)
    assert minors, "some window has a winner"
    assert any(len(m["explore_seeds"]) > 1 for m in minors), "a MINOR moved by the mean of several winners"
