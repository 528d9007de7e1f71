"""The ads/organic mixer (models/mixer/): seeded environment, dueling decomposition, the session model,
the greedy rule, a small trained mixer against fixed placement, and `drnflow mixer` end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.mixer.ads import AdConfig
from models.mixer.environment import MixerConfig, MixerEnvironment, Page
from models.mixer.network import mixer_network, value_and_advantage
from models.mixer.pipeline import MixerSetup, train_seed
from models.mixer.placements import Placements
from models.mixer.policies import FixedPlacement, GreedyPerSlot, Mixer, QMixer, RandomMixer
from models.mixer.rollout import rollout
from models.mixer.session import SessionConfig, SessionModel
from models.mixer.trainer import TrainConfig
from models.simulator.completion import MFConfig
from models.simulator.movielens import GENRES, MovieLens
from models.simulator.world import World, WorldConfig

torch.set_num_threads(1)
N_USERS, N_ITEMS = 40, 60


def synthetic_movielens(seed: int = 0) -> MovieLens:
    """Ratings from a rank-2 taste model, 30 per user (as tests/unit/test_simulator.py)."""
    rng = np.random.default_rng(seed)
    pu, qi = rng.normal(size=(N_USERS, 2)), rng.normal(size=(N_ITEMS, 2))
    ru = np.repeat(np.arange(N_USERS, dtype=np.int32), 30)
    ri = np.concatenate([rng.choice(N_ITEMS, size=30, replace=False) for _ in range(N_USERS)]).astype(np.int32)
    score = np.einsum("nk,nk->n", pu[ru], qi[ri]) + rng.normal(0, 0.3, ru.size)
    return MovieLens(
        user_ids=[str(u + 1) for u in range(N_USERS)], item_ids=[str(i + 1) for i in range(N_ITEMS)],
        rating_user=ru, rating_item=ri, rating=np.clip(np.rint(3 + score), 1, 5).astype(np.int8),
        rating_ts=rng.integers(880_000_000, 889_000_000, ru.size).astype(np.int64),
        user_age=rng.integers(15, 70, N_USERS).astype(np.float32),
        user_female=(rng.random(N_USERS) < 0.4).astype(np.float32),
        item_genres=(rng.random((N_ITEMS, len(GENRES))) < 0.15).astype(np.float32),
        item_year=rng.integers(1950, 1998, N_ITEMS).astype(np.float32),
    )


@pytest.fixture(scope="module")
def world() -> World:
    cfg = WorldConfig(seed=3, n_candidates=20, truth_mf=MFConfig(rank=2, reg=1.0, iters=8, seed=3))
    return World.build(cfg, synthetic_movielens())


SMALL = MixerConfig(slots=6, ads=AdConfig(n_ads=30, bid_median=3.5), session=SessionConfig(max_depth=12))


@pytest.fixture(scope="module")
def env(world: World) -> MixerEnvironment:
    return MixerEnvironment(world, SMALL, seed=1)


def test_placements_respect_max_ads_and_gap() -> None:
    p = Placements(slots=6, max_ads=2, min_gap=2)
    assert len(p) == 1 + 6 + 10 and p.placements[0] == ()
    assert all(len(x) <= 2 and (len(x) < 2 or x[1] - x[0] >= 2) for x in p.placements)
    org, ad = p.exposures(np.arange(6, 0, -1, dtype=np.float64))
    a = p.index((0, 3))  # ads at slots 0 and 3: organic ranks 0..3 at slots 1, 2, 4, 5; ranks 4, 5 pushed off
    assert org[a].tolist() == [5, 4, 2, 1, 0, 0] and ad[a].tolist() == [6, 3]


def test_same_seed_same_sessions_and_streams_differ(env: MixerEnvironment) -> None:
    runs = [rollout(env, RandomMixer(4), 30, seed=7, log=True) for _ in range(2)]
    (t1, l1), (t2, l2) = runs
    assert l1 is not None and l2 is not None
    assert np.array_equal(t1.combined, t2.combined) and np.array_equal(t1.length, t2.length)
    assert np.array_equal(l1.actions, l2.actions) and np.array_equal(l1.choice, l2.choice)
    t3, _ = rollout(env, RandomMixer(4), 30, seed=8)
    assert not np.array_equal(t1.combined, t3.combined)
    # the next page of a logged row belongs to the same session, one page later
    nxt = l1.next_index
    assert (nxt[nxt >= 0] > np.flatnonzero(nxt >= 0)).all() and (nxt == -1).sum() == 30


def test_training_is_deterministic_for_a_seed(world: World) -> None:
    setup = MixerSetup(env=SMALL, rounds=2, sessions_per_round=20, hidden=8, train=TrainConfig(steps=15, batch_size=16))
    a, b, c = (train_seed(world, setup, seed=s).network.state_dict() for s in (2, 2, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_dueling_decomposition() -> None:
    net = mixer_network(5, 4, hidden=8, seed=2)
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(3, 5, generator=g), torch.randn(3, 7, 4, generator=g)
    q = net(s, a)
    v, adv = value_and_advantage(net, s, a)
    assert torch.allclose(q.mean(dim=1), v, atol=1e-5)  # mean over placements of Q is V(s)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(3), atol=1e-5)
    with torch.no_grad():  # shifting every advantage by a constant leaves Q unchanged
        net.advantage_head.bias += 5.0
    assert torch.allclose(net(s, a), q, atol=1e-5)


def test_session_exit_rises_with_ad_load() -> None:
    model = SessionModel(SessionConfig(), np.array([20.0, 40.0, 60.0]), np.array([10.0, 50.0, 200.0]), seed=0)
    users = np.array([0, 1, 2])
    eng = np.full(3, 1.0)
    p = [model.exit_probability(users, np.full(3, load), eng) for load in (0.0, 1.0, 3.0, 6.0)]
    assert all((a < b).all() for a, b in itertools.pairwise(p))
    assert (model.exit_probability(users, np.full(3, 1.0), eng + 1) < p[1]).all()  # engagement keeps users
    load = model.next_load(np.zeros(1), np.array([2]))
    assert model.next_load(load, np.array([0]))[0] == pytest.approx(0.7 * 2)


def test_more_ads_shorter_sessions(env: MixerEnvironment) -> None:
    lengths = [rollout(env, FixedPlacement(s), 200, seed=3)[0].length.mean() for s in [(), (6,), (3, 6)]]
    assert lengths[0] > lengths[1] > lengths[2]


def _page(env: MixerEnvironment, organic: list[float], ads: list[float]) -> Page:
    n = env.n_actions
    z = np.zeros((1, n))
    return Page(np.zeros(1, dtype=np.int64), np.zeros((1, env.state_dim), np.float32),
                np.zeros((1, n, env.action_dim), np.float32), z, z, np.array([organic]), np.array([ads]),
                np.zeros(1))


def test_greedy_puts_an_ad_where_it_beats_the_organic_item(env: MixerEnvironment) -> None:
    greedy, places = GreedyPerSlot(), env.placements.placements
    organic = [0.9, 0.8, 0.5, 0.3, 0.2, 0.1]
    assert places[greedy.choose(env, _page(env, organic, [0.6, 0.4]))[0]] == (2, 4)  # 0.6 > 0.5, gap, 0.4 > 0.3
    assert places[greedy.choose(env, _page(env, organic, [0.05, 0.01]))[0]] == ()  # never worth it
    assert places[greedy.choose(env, _page(env, organic, [5.0, 4.0]))[0]] == (0, 2)  # always: top, then the gap
    assert places[greedy.choose(env, _page(env, organic, [0.85, 0.01]))[0]] == (1,)


def test_fixed_placement_rejects_slots_that_are_no_placement(env: MixerEnvironment) -> None:
    page = _page(env, [0.1] * 6, [0.1, 0.1])
    with pytest.raises(ValueError, match="not a valid placement"):
        FixedPlacement((3, 4)).choose(env, page)
    with pytest.raises(ValueError, match=r"not in 1\.\.6"):
        FixedPlacement((9,)).choose(env, page)


def test_trained_mixer_beats_fixed_placement(world: World) -> None:
    """Small and fast, but it can fail: the DQN must also beat the random mixer and the mean of untrained
    networks of the same shape (an untrained network is some constant-ish placement; one may be good)."""
    setup = MixerSetup(env=SMALL, rounds=2, sessions_per_round=400, hidden=32,
                       train=TrainConfig(steps=600, batch_size=128))
    run = train_seed(world, setup, seed=1)
    env = MixerEnvironment(world, SMALL, seed=1)

    def combined(mixer: Mixer) -> float:
        return float(rollout(env, mixer, 400, seed=99)[0].combined.mean())

    dqn = combined(QMixer(run.network))
    untrained = np.mean([combined(QMixer(mixer_network(env.state_dim, env.action_dim, 32, seed=k)))
                         for k in range(3)])
    assert dqn > combined(FixedPlacement((3, 6)))
    assert dqn > combined(RandomMixer(0))
    assert dqn > untrained


def test_mixer_cli_train_and_evaluate(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from drnflow import datasets
    from drnflow.cli import main

    monkeypatch.setattr(datasets, "world", lambda config=None: world)
    d = str(tmp_path)
    assert main(["mixer", "train", "--dir", d, "--seeds", "2", "--rounds", "1", "--sessions", "20",
                 "--steps", "5", "--batch-size", "16"]) == 0
    assert main(["mixer", "evaluate", "--dir", d, "--seeds", "2", "--sessions", "10", "--fixed-slots", "2,5"]) == 0
    out = capsys.readouterr().out
    assert "fixed 2,5" in out and "greedy per-slot" in out and "dueling DQN" in out and "± " in out
    rows = json.loads((tmp_path / "evaluate.json").read_text())["results"]
    assert [r["name"] for r in rows] == ["fixed 2,5", "greedy per-slot", "dueling DQN"]
    assert len(rows[0]["per_seed"]["combined"]) == 2
    # bad input is one sentence and exit 1, no traceback
    assert main(["mixer", "evaluate", "--dir", d, "--seeds", "3"]) == 1
    assert "no network for seed(s) [2]" in capsys.readouterr().err
    (tmp_path / "mixer.pt").write_bytes(b"not a checkpoint")
    assert main(["mixer", "evaluate", "--dir", d, "--seeds", "1"]) == 1
    err = capsys.readouterr().err
    assert "not a readable mixer checkpoint" in err and "Traceback" not in err
    torch.save({"config": {}, "state_dict": {}}, tmp_path / "mixer.pt")  # e.g. another command's checkpoint
    assert main(["mixer", "evaluate", "--dir", d, "--seeds", "1"]) == 1
    assert "is not a mixer checkpoint" in capsys.readouterr().err
    from models.mixer.pipeline import SeedRun, save_checkpoint

    save_checkpoint(tmp_path / "mixer.pt", MixerSetup(), [SeedRun(0, mixer_network(3, 3, 8), 0, 0.0)])
    assert main(["mixer", "evaluate", "--dir", d, "--seeds", "1"]) == 1
    assert "the checkpoint's network takes (state, action) dims (3, 3)" in capsys.readouterr().err
    assert main(["mixer", "evaluate", "--dir", str(tmp_path / "none")]) == 1
    assert "run `drnflow mixer train` first" in capsys.readouterr().err
