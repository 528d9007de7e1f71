"""The GE list environment: exact expected clicks, sequence effects, logs split by time, configs."""

from __future__ import annotations

import numpy as np
import pytest

from models.ge.environment import (
    Catalog,
    EnvConfig,
    ListEnvironment,
    log_exposures,
    noisy_greedy_lists,
    split_by_time,
)

TINY = EnvConfig(n_users=50, n_items=200, n_shops=8, n_types=4, item_dim=6, user_dim=4, latent_dim=4,
                 candidates=12, list_size=5)


def test_expected_clicks_matches_the_written_click_model() -> None:
    env = ListEnvironment(TINY, seed=3)
    c, cat = env.config, env.catalog
    same_shop = np.flatnonzero(cat.shop == cat.shop[0])[1]
    same_type = np.flatnonzero((cat.item_type == cat.item_type[0]) & (cat.shop != cat.shop[0]))[0]
    user, items = 7, np.array([0, same_shop, same_type, 99])  # every effect is exercised
    base = env.base_logit(user, items)
    expected = 0.0
    for k, item in enumerate(items):
        before = items[:k]
        logit = (base[k] - c.shop_fatigue * np.sum(cat.shop[before] == cat.shop[item])
                 - c.type_fatigue * np.sum(cat.item_type[before] == cat.item_type[item]))
        if k > 0:
            prev = items[k - 1]
            logit -= c.adjacent_shop_penalty * (cat.shop[prev] == cat.shop[item])
            logit += env.pair_effect[cat.item_type[prev], cat.item_type[item]]
        expected += np.exp(-c.attention_decay * k) / (1 + np.exp(-logit))
    assert env.expected_clicks([user], [items])[0] == pytest.approx(expected, rel=1e-12)


def test_sampled_clicks_average_to_the_exact_expectation() -> None:
    env = ListEnvironment(TINY, seed=1)
    items = np.tile(np.array([3, 8, 21, 55, 80]), (20000, 1))
    users = np.full(20000, 4)
    clicks = env.sample_clicks(users, items, np.random.default_rng(0))
    assert clicks.sum(1).mean() == pytest.approx(env.expected_clicks([4], items[:1])[0], abs=0.03)


def test_order_matters_through_shop_fatigue() -> None:
    """Two items of one shop plus one of another: splitting the pair beats showing it back to back."""
    cfg = EnvConfig(**{**TINY.__dict__, "pair_scale": 0.0, "type_fatigue": 0.0, "attention_decay": 0.0})
    feats = np.zeros((200, 6), dtype=np.float32)
    feats[:, 0] = np.arange(200)  # all distinct, shop/type set by hand below
    shop = np.arange(200) % 8
    catalog = Catalog(feats, shop.astype(np.int64), (np.arange(200) % 4).astype(np.int64))
    env = ListEnvironment(cfg, seed=0, catalog=catalog)
    a, b, other = 0, 8, 1  # a and b share shop 0
    together = env.expected_clicks([0], [[a, b, other]])[0]
    apart = env.expected_clicks([0], [[a, other, b]])[0]
    assert apart > together


def test_logs_split_by_time_and_logging_policy_pins_the_trigger() -> None:
    env = ListEnvironment(TINY, seed=0)
    log = log_exposures(env, 300, seed=2)
    train, held_out = split_by_time(log, 0.75)
    assert len(train) == 225 and len(held_out) == 75
    assert train.requests.request_time.max() < held_out.requests.request_time.min()
    pinned = log.requests.pinned
    assert (pinned >= 0).any() and (pinned < 0).any()
    assert np.all(log.shown[pinned >= 0, 0] == pinned[pinned >= 0])
    assert all(len(set(row)) == TINY.list_size for row in log.shown)
    greedy = noisy_greedy_lists(log.requests, 5, 0.0, np.random.default_rng(0))
    free = pinned < 0
    top = np.argsort(-log.requests.ranker_score[free], axis=1)[:, :5]
    assert np.array_equal(greedy[free], top)


def test_same_seed_same_environment_and_logs() -> None:
    a = log_exposures(ListEnvironment(TINY, seed=5), 50, seed=9)
    b = log_exposures(ListEnvironment(TINY, seed=5), 50, seed=9)
    assert np.array_equal(a.shown, b.shown) and np.array_equal(a.clicks, b.clicks)
    assert np.array_equal(a.requests.candidates, b.requests.candidates)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("list_size", 20, "list_size <= candidates"),
    ("shop_fatigue", -1.0, "shop_fatigue must be >= 0"),
    ("trigger_prob", 1.5, "trigger_prob"),
    ("n_items", 10, "candidates \\* retrieval_pool"),
])
def test_env_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvConfig(**{**TINY.__dict__, field: value})
