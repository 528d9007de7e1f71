"""OLTR check: NDCG against hand-computed values, LETOR parsing, and DBGD learning on synthetic queries."""

from __future__ import annotations

import numpy as np
import pytest

from models.oltr import OltrConfig, Query, dcg_at_k, ndcg_at_k, offline_ndcg, parse_letor, run_dbgd


def test_dcg_and_ndcg_hand_computed() -> None:
    # ranking labels [3, 2, 3, 0, 1, 2], gain 2^rel - 1, discount 1/log2(rank + 1):
    # DCG  = 7/1 + 3/1.584963 + 7/2 + 0/2.321928 + 1/2.584963 + 3/2.807355
    #      = 7 + 1.892789 + 3.5 + 0 + 0.386853 + 1.068622 = 13.848264
    # IDCG (ideal [3, 3, 2, 2, 1, 0]) = 7 + 4.416508 + 1.5 + 1.292030 + 0.386853 + 0 = 14.595391
    labels = [3, 2, 3, 0, 1, 2]
    assert dcg_at_k(labels, 6) == pytest.approx(13.848264, abs=1e-5)
    assert ndcg_at_k(labels, labels, 6) == pytest.approx(13.848264 / 14.595391, abs=1e-6)
    # @2: DCG = 7 + 1.892789, IDCG = 7 + 4.416508
    assert ndcg_at_k(labels, labels, 2) == pytest.approx(8.892789 / 11.416508, abs=1e-6)
    # the ideal may hold documents that were not shown
    assert ndcg_at_k([1], [1, 4, 0], 1) == pytest.approx(1 / 15)
    assert ndcg_at_k([4, 1, 0], [0, 1, 4], 3) == pytest.approx(1.0)
    assert ndcg_at_k([0, 0], [0, 0, 0], 10) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([1], [1], 0)


def test_parse_letor_groups_queries_and_normalises_per_query() -> None:
    text = (
        "2 qid:7 1:3 2:10 # doc a\n"
        "0 qid:7 1:1 3:5\n"
        "1 qid:9 1:4 2:4\n"
        "\n"
        "4 qid:9 1:8 2:4\n"
    )
    qs = parse_letor(text, 3)
    assert [q.qid for q in qs] == ["7", "9"]
    assert qs[0].labels.tolist() == [2, 0] and qs[1].labels.tolist() == [1, 4]
    assert qs[0].features.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert qs[1].features.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]  # constant column -> 0
    raw = parse_letor(text, 3, normalise=False)
    assert raw[0].features[0].tolist() == [3.0, 10.0, 0.0]
    with pytest.raises(ValueError, match="feature index 4"):
        parse_letor("1 qid:1 4:1\n", 3)
    with pytest.raises(ValueError, match="expected 'rel qid:Q"):
        parse_letor("1 1:1\n", 3)


def synthetic_queries(n: int, seed: int, n_features: int = 8) -> list[Query]:
    """Relevance grows with a hidden linear score, so a linear ranker can learn it."""
    rng = np.random.default_rng(seed)
    w_true = np.linspace(1.0, -0.5, n_features)
    out = []
    for q in range(n):
        x = rng.random((30, n_features))
        s = x @ w_true + rng.normal(0, 0.1, 30)
        labels = np.digitize(s, np.quantile(s, [0.5, 0.75, 0.9, 0.97]))
        out.append(Query(str(q), x, labels.astype(np.int64)))
    return out


def test_dbgd_learns_on_synthetic_queries_and_is_repeatable() -> None:
    train, test = synthetic_queries(30, 0), synthetic_queries(20, 1)
    cfg = OltrConfig(click_model="perfect", impressions=1500, seed=4, eval_every=500)
    result = run_dbgd(train, test, cfg)
    start = offline_ndcg(test, np.zeros(8), 10)
    assert result.offline_ndcg > start + 0.15
    assert result.explore_wins > 0
    assert [t for t, _ in result.curve] == [500, 1000, 1500]
    assert result.curve[-1][1] == pytest.approx(result.offline_ndcg)
    # the weights only ever move by η·u with |u| = δ = 1, once per EXPLORE win
    assert np.linalg.norm(result.weights) <= cfg.learning_rate * result.explore_wins + 1e-9
    again = run_dbgd(train, test, cfg)
    assert again.online_ndcg == result.online_ndcg and np.array_equal(again.weights, result.weights)
    # online performance is a γ-discounted sum over impressions of NDCG in [0, 1]
    assert 0 < result.online_ndcg <= (1 - cfg.discount**cfg.impressions) / (1 - cfg.discount)


def test_oltr_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="delta"):
        OltrConfig(delta=0)
    with pytest.raises(ValueError, match="click model"):
        OltrConfig(click_model="nope")
    with pytest.raises(ValueError, match="discount"):
        OltrConfig(discount=1.5)


def test_real_mslr_sample_from_the_rankeval_sdist() -> None:
    from drnflow.datasets import DataUnavailable, mslr_sample

    try:
        train, test = mslr_sample("train"), mslr_sample("test")
    except DataUnavailable as e:
        pytest.skip(str(e))
    assert len(train) == 43 and len(test) == 43
    assert sum(q.labels.size for q in train) == 5000 and train[0].features.shape[1] == 136
    assert {int(v) for q in test for v in q.labels} == {0, 1, 2, 3, 4}
    assert all(q.features.min() >= 0.0 and q.features.max() <= 1.0 for q in train)
