"""Dueling Double DQN training (models/major/ddqn.py): learns from logged clicks, target switch every K
steps, seeded repeatability, and resuming from a checkpoint ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.drn import DrnConfig, DrnQNetwork
from models.major.ddqn import DdqnConfig, DdqnTrainer
from models.major.offline_eval import network_scorer, offline_table, random_scorer
from models.transitions import TransitionSet, build_transitions
from models.weights import flatten

torch.set_num_threads(1)
DS, DA, K = 4, 3, 5


def synthetic_log(n: int, seed: int) -> TransitionSet:
    """Users click exactly the items whose first action feature is > 0.8 (relevance is in the features)."""
    rng = np.random.default_rng(seed)
    imps: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for i in range(n):
        rid, t = f"r{i}", i * 1000
        feats = rng.normal(size=(K, DA)).astype(np.float32)
        imps.append({
            "request_id": rid, "user_id": f"u{i % 7}", "event_time": t, "model_id": "m",
            "state_features": rng.normal(size=DS).tolist(),
            "slots": [{"item_id": f"i{j}", "position": j, "features": feats[j].tolist()} for j in range(K)],
        })
        clicks += [{"request_id": rid, "item_id": f"i{j}", "event_time": t + 10} for j in range(K)
                   if feats[j, 0] > 0.8]
    return build_transitions(imps, clicks, log_end_ms=n * 1000)


def small_net(seed: int = 0) -> DrnQNetwork:
    return DrnQNetwork(DrnConfig(DS, DA, (16,), (16,), seed=seed))


DATA = synthetic_log(300, seed=1)
TRAIN, TEST = DATA.split_at(240 * 1000)
CFG = DdqnConfig(steps=40, batch_size=32, target_every=10, learning_rate=5e-3, seed=3, device="cpu")


def test_learns_to_rank_the_clicked_items_first() -> None:
    trainer = DdqnTrainer(DATA, TRAIN, small_net(), DdqnConfig(steps=300, batch_size=64, learning_rate=5e-3,
                                                               seed=0, device="cpu"))
    before = offline_table(DATA, TEST, {"q": network_scorer(small_net())})[0]
    trainer.run()
    after, rnd = offline_table(DATA, TEST, {"q": network_scorer(trainer.online), "random": random_scorer(0)})
    assert after.ndcg > rnd.ndcg + 0.15
    assert after.ndcg > before.ndcg + 0.1
    assert np.isfinite(trainer.last_loss)


def test_target_network_is_switched_every_k_steps() -> None:
    trainer = DdqnTrainer(DATA, TRAIN, small_net(), CFG)
    start = flatten(trainer.target)
    for _ in range(CFG.target_every - 1):
        trainer.train_step()
    np.testing.assert_array_equal(flatten(trainer.target), start)
    assert not np.array_equal(flatten(trainer.online), start)
    trainer.train_step()
    np.testing.assert_array_equal(flatten(trainer.target), flatten(trainer.online))


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    runs = []
    for seed in (3, 3, 4):
        t = DdqnTrainer(DATA, TRAIN, small_net(), DdqnConfig(**{**CFG.__dict__, "seed": seed}))
        t.run()
        runs.append(flatten(t.online))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = DdqnTrainer(DATA, TRAIN, small_net(), CFG)
    straight.run()
    ckpt = tmp_path / "ddqn.pt"
    first = DdqnTrainer(DATA, TRAIN, small_net(), CFG)
    first.run(steps=25, checkpoint=ckpt)  # "crashes" after 25 steps (not a multiple of target_every)
    resumed = DdqnTrainer(DATA, TRAIN, small_net(), CFG)
    resumed.load(ckpt)
    assert resumed.step == 25
    resumed.run()
    np.testing.assert_array_equal(flatten(resumed.online), flatten(straight.online))
    np.testing.assert_array_equal(flatten(resumed.target), flatten(straight.target))


def test_checkpoint_of_other_data_or_settings_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "ddqn.pt"
    DdqnTrainer(DATA, TRAIN, small_net(), CFG).run(steps=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match="other data"):
        DdqnTrainer(DATA, TEST, small_net(), CFG).load(ckpt)
    with pytest.raises(ValueError, match="other settings"):
        DdqnTrainer(DATA, TRAIN, small_net(), DdqnConfig(**{**CFG.__dict__, "gamma": 0.9})).load(ckpt)


def test_dims_and_config_are_checked() -> None:
    with pytest.raises(ValueError, match="dims"):
        DdqnTrainer(DATA, TRAIN, DrnQNetwork(DrnConfig(DS + 1, DA, (4,), (4,))), CFG)
    with pytest.raises(ValueError, match="gamma"):
        DdqnConfig(gamma=1.0)
    with pytest.raises(ValueError, match="device"):
        DdqnConfig(device="tpu")
