"""PDGD (models/pdgd.py) against brute force, and the three online learners on synthetic queries."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from models.oltr import OltrConfig, offline_ndcg, run_oltr
from models.pdgd import document_weights, examined_preferences, plackett_luce_sample
from tests.unit.test_oltr import synthetic_queries


def _pl_prob(s: np.ndarray, ranking: list[int]) -> float:
    """Brute force: P(ranking as the top of a Plackett–Luce draw)."""
    left = list(range(len(s)))
    p = 1.0
    for d in ranking:
        z = sum(math.exp(s[j]) for j in left)
        p *= math.exp(s[d]) / z
        left.remove(d)
    return p


def test_plackett_luce_sampling_matches_the_distribution() -> None:
    s = np.array([1.0, 0.0, -0.5, 2.0])
    rng = np.random.default_rng(0)
    draws = [tuple(plackett_luce_sample(s, 2, rng).tolist()) for _ in range(40_000)]
    for top in itertools.permutations(range(4), 2):
        freq = draws.count(top) / len(draws)
        assert freq == pytest.approx(_pl_prob(s, list(top)), abs=0.01), top
    assert plackett_luce_sample(s, 10, rng).size == 4


def test_preferences_are_clicks_over_unclicked_above_the_last_click_and_the_next_one() -> None:
    assert examined_preferences([False, True, False, False, True, False, False]) == [
        (1, 0), (1, 2), (1, 3), (1, 5), (4, 0), (4, 2), (4, 3), (4, 5)]
    assert examined_preferences([False] * 5) == []
    assert examined_preferences([False, False, True]) == [(2, 0), (2, 1)]


def test_document_weights_are_the_debiased_pair_gradient_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    s = rng.normal(size=7)
    ranking = [3, 0, 5, 1, 6]
    clicked = np.array([False, True, False, False, True])
    docs, coef = document_weights(s, ranking, clicked)
    expected: dict[int, float] = {}
    for i, j in examined_preferences(clicked):
        swapped = list(ranking)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        p, q = _pl_prob(s, ranking), _pl_prob(s, swapped)
        dk, dl = ranking[i], ranking[j]
        ek, el = math.exp(s[dk]), math.exp(s[dl])
        w = q / (p + q) * ek * el / (ek + el) ** 2
        expected[dk] = expected.get(dk, 0.0) + w
        expected[dl] = expected.get(dl, 0.0) - w
    assert docs.tolist() == sorted(expected)
    assert coef == pytest.approx([expected[int(d)] for d in docs], rel=1e-9)
    assert coef.sum() == pytest.approx(0.0, abs=1e-12)
    assert coef[docs.tolist().index(0)] > 0 and coef[docs.tolist().index(3)] < 0
    assert document_weights(s, ranking, np.zeros(5, dtype=bool))[0].size == 0
    with pytest.raises(ValueError, match="flags"):
        document_weights(s, ranking, np.zeros(4, dtype=bool))


@pytest.mark.parametrize("learner", ["dbgd", "mgd", "pdgd"])
def test_each_learner_learns_on_synthetic_queries_and_is_repeatable(learner: str) -> None:
    train, test = synthetic_queries(30, 0), synthetic_queries(20, 1)
    cfg = OltrConfig(click_model="perfect", impressions=800, seed=4, learner=learner, n_candidates=9)
    result = run_oltr(train, test, cfg)
    assert result.offline_ndcg > offline_ndcg(test, np.zeros(8), 10) + 0.1, result.offline_ndcg
    again = run_oltr(train, test, cfg)
    assert np.array_equal(again.weights, result.weights) and again.online_ndcg == result.online_ndcg


def test_pdgd_beats_dbgd_on_synthetic_queries_under_each_cascade() -> None:
    train, test = synthetic_queries(30, 0), synthetic_queries(20, 1)
    for click in ("perfect", "navigational", "informational"):
        gains = []
        for seed in range(3):
            dbgd = run_oltr(train, test, OltrConfig(click_model=click, impressions=600, seed=seed))
            pdgd = run_oltr(train, test, OltrConfig(click_model=click, impressions=600, seed=seed, learner="pdgd"))
            gains.append(pdgd.offline_ndcg - dbgd.offline_ndcg)
        assert min(gains) > 0, (click, gains)
