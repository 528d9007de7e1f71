"""GE training on a tiny environment: evaluator AUC on a held-out time range, REINFORCE improves reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.ge.environment import EnvConfig, ListEnvironment, LoggedLists, log_exposures, split_by_time
from models.ge.evaluator import (
    EvaluatorConfig,
    EvaluatorTrainConfig,
    ListEvaluator,
    auc,
    predict_logged,
    train_evaluator,
)
from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
from models.ge.reinforce import ReinforceConfig, train_generator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward, RuleConfig, UtilityWeights

torch.set_num_threads(1)

TINY = EnvConfig(n_users=200, n_items=400, n_shops=10, n_types=4, item_dim=8, user_dim=6, latent_dim=6,
                 candidates=12, list_size=5)


Trained = tuple[ListEnvironment, LoggedLists, LoggedLists, ListEvaluator]


@pytest.fixture(scope="module")
def trained() -> Trained:
    env = ListEnvironment(TINY, seed=0)
    train, held_out = split_by_time(log_exposures(env, 3000, seed=1), 0.8)
    ev = ListEvaluator(EvaluatorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types, hidden=16,
                                       layers=1, feedforward=32), seed=0)
    losses = train_evaluator(ev, train, EvaluatorTrainConfig(epochs=3, batch_size=128, seed=0))
    assert losses[-1] < losses[0]
    return env, train, held_out, ev


def test_auc_by_ranks() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both"):
        auc([1, 1], [0.2, 0.3])


def test_evaluator_auc_on_held_out_time_range(trained: Trained) -> None:
    _, _, held_out, ev = trained
    assert auc(held_out.clicks, predict_logged(ev, held_out)) > 0.6


def test_reinforce_raises_reward_over_the_untrained_generator(trained: Trained) -> None:
    _, train, held_out, ev = trained
    reward = ListReward(ev, UtilityWeights(), RuleConfig(min_distinct_shops=4, min_type_share=0.2))
    gen = PointerGenerator(GeneratorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types,
                                           hidden=24), seed=0)
    requests = RequestTensors.from_batch(held_out.requests)

    def served_reward() -> float:
        with torch.no_grad():
            lists, _ = gen.decode(requests, TINY.list_size, sample=False)
        return float(reward(requests, lists).mean())

    before = served_reward()
    history = train_generator(gen, reward, train, ReinforceConfig(steps=60, batch_size=64, seed=0,
                                                                  rules=reward.rules))
    after = served_reward()
    assert after > before + 0.1
    assert np.mean(history.reward[-10:]) > np.mean(history.reward[:10])


def test_training_is_seeded(trained: Trained) -> None:
    _, train, _, ev = trained
    reward = ListReward(ev, UtilityWeights(), RuleConfig())
    runs = []
    for _ in range(2):
        gen = PointerGenerator(GeneratorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types,
                                               hidden=8), seed=5)
        config = ReinforceConfig(steps=3, batch_size=16, seed=2)
        runs.append(train_generator(gen, reward, train, config).reward)
    assert runs[0] == runs[1]


def test_reinforce_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        ReinforceConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match=r"UtilityWeights\.type_share"):
        UtilityWeights(type_share=-1.0)
    with pytest.raises(ValueError, match="min_type_share"):
        RuleConfig(min_type_share=0.0)
