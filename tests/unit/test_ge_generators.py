"""Serving generators and rule utilities: valid lists, pinned first, MMR(0) = greedy, beam = exhaustive
for tiny lists, best-of picks the best proposal; rule utilities on hand-written lists."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.ge.environment import EnvConfig, ListEnvironment
from models.ge.evaluator import EvaluatorConfig, ListEvaluator
from models.ge.list_generators import (
    DPP,
    MMR,
    BeamSearch,
    BestOfGenerators,
    ListGenerator,
    MultiQueue,
    PointerBestOfK,
    PointerGreedy,
    ScoreGreedy,
)
from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward, RuleConfig, UtilityWeights, rule_compliance, rule_utilities

torch.set_num_threads(1)

TINY = EnvConfig(n_users=50, n_items=300, n_shops=8, n_types=4, item_dim=6, user_dim=4, latent_dim=4,
                 candidates=12, list_size=5)
ENV = ListEnvironment(TINY, seed=0)
REQUESTS = ENV.make_requests(30, np.random.default_rng(11))
EVALUATOR = ListEvaluator(EvaluatorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types,
                                          hidden=16, layers=1, feedforward=16), seed=0).eval()
REWARD = ListReward(EVALUATOR, UtilityWeights(), RuleConfig(min_distinct_shops=4))
POINTER = PointerGenerator(GeneratorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types,
                                           hidden=16), seed=0)


def _single(i: int) -> RequestTensors:
    return RequestTensors.from_batch(REQUESTS.take([i]))


def _all_generators() -> list[ListGenerator]:
    n = TINY.list_size
    base: list[ListGenerator] = [PointerGreedy(POINTER, n), PointerBestOfK(POINTER, n, REWARD, k=4),
                                 ScoreGreedy(n), BeamSearch(EVALUATOR, n, width=3), MMR(n, 0.5), DPP(n),
                                 MultiQueue(n, REWARD, k=4)]
    return [*base, BestOfGenerators(base, n, REWARD)]


@pytest.mark.parametrize("generator", _all_generators(), ids=lambda g: g.name)
def test_every_generator_serves_valid_lists_with_the_trigger_first(generator: ListGenerator) -> None:
    assert (REQUESTS.pinned >= 0).any() and (REQUESTS.pinned < 0).any()
    for i in range(len(REQUESTS)):
        row = generator.generate(_single(i)).tolist()
        assert len(row) == TINY.list_size and len(set(row)) == TINY.list_size
        assert all(0 <= j < TINY.candidates for j in row)
        if REQUESTS.pinned[i] >= 0:
            assert row[0] == REQUESTS.pinned[i]


def test_mmr_without_diversity_is_greedy_by_score() -> None:
    mmr, greedy = MMR(TINY.list_size, diversity=0.0), ScoreGreedy(TINY.list_size)
    for i in range(len(REQUESTS)):
        assert torch.equal(mmr.generate(_single(i)), greedy.generate(_single(i)))


def test_diversity_spreads_shops() -> None:
    def mean_shops(gen: ListGenerator) -> float:
        return float(np.mean([len(set(REQUESTS.shop[i][gen.generate(_single(i)).numpy()]))
                              for i in range(len(REQUESTS))]))

    greedy = mean_shops(ScoreGreedy(TINY.list_size))
    assert mean_shops(MMR(TINY.list_size, diversity=0.9)) > greedy
    assert mean_shops(DPP(TINY.list_size, quality_weight=0.1)) > greedy


def test_dpp_with_no_pin_starts_from_the_best_scored_item() -> None:
    for i in np.flatnonzero(REQUESTS.pinned < 0):
        assert DPP(TINY.list_size).generate(_single(int(i)))[0] == int(np.argmax(REQUESTS.ranker_score[i]))


def test_wide_beam_on_two_slots_is_the_exhaustive_evaluator_optimum() -> None:
    free = int(np.flatnonzero(REQUESTS.pinned < 0)[0])
    request = _single(free)
    beam = BeamSearch(EVALUATOR, 2, width=TINY.candidates * TINY.candidates).generate(request)
    pairs = torch.tensor(list(itertools.permutations(range(TINY.candidates), 2)))
    with torch.no_grad():
        best = pairs[int(EVALUATOR.score(request.repeat(len(pairs)), pairs).argmax())]
    assert torch.equal(beam, best)


def test_best_of_generators_serves_the_highest_reward_proposal() -> None:
    n = TINY.list_size
    parts: list[ListGenerator] = [ScoreGreedy(n), MMR(n, 0.7), DPP(n), MultiQueue(n, REWARD, k=3)]
    best = BestOfGenerators(parts, n, REWARD)
    for i in range(10):
        request = _single(i)
        served = best.generate(request).unsqueeze(0)
        each = torch.cat([p.generate(request).unsqueeze(0) for p in parts[:3]])
        assert float(REWARD(request, served)) >= float(REWARD(request.repeat(3), each).max()) - 1e-6


def test_rule_utilities_on_hand_written_lists() -> None:
    rules = RuleConfig(min_distinct_shops=3, promoted_type=2, min_type_share=0.5)
    shops = torch.tensor([[1, 1, 2, 3], [1, 2, 1, 2], [4, 5, 6, 7]])
    types = torch.tensor([[2, 0, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0]])
    util = rule_utilities(shops, types, rules)
    assert util["distinct_shops"].tolist() == pytest.approx([3 / 4, 2 / 4, 1.0])
    assert util["no_adjacent_shop"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    assert util["type_share"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    ok = rule_compliance(shops, types, rules)
    assert ok["distinct_shops"].tolist() == [True, False, True]
    assert ok["no_adjacent_shop"].tolist() == [False, True, True]
    assert ok["type_share"].tolist() == [False, True, False]
    assert ok["all"].tolist() == [False, False, False]


def test_reward_is_the_weighted_sum_of_utilities() -> None:
    request = RequestTensors.from_batch(REQUESTS.take([0, 1]))
    lists = torch.tensor([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    weights = UtilityWeights(evaluator=2.0, distinct_shops=0.5, no_adjacent_shop=0.0, type_share=1.5)
    reward = ListReward(EVALUATOR, weights, REWARD.rules)(request, lists)
    rows = torch.arange(2).unsqueeze(1)
    util = rule_utilities(request.shop[rows, lists], request.item_type[rows, lists], REWARD.rules)
    with torch.no_grad():
        expected = (2.0 * EVALUATOR.score(request, lists) + 0.5 * util["distinct_shops"]
                    + 1.5 * util["type_share"])
    assert torch.allclose(reward, expected)


def test_comparison_scores_each_generator_against_the_log_and_the_truth() -> None:
    from models.ge.compare import compare_generators, format_table
    from models.ge.environment import log_exposures

    log = log_exposures(ENV, 12, seed=4)
    greedy = ScoreGreedy(TINY.list_size)
    logged, row = compare_generators(ENV, log, [greedy], REWARD)
    lists = np.stack([greedy.generate(RequestTensors.from_batch(log.requests.take([i]))).numpy()
                      for i in range(len(log))])
    true, true_logged = ENV.true_value(log.requests, lists), ENV.true_value(log.requests, log.shown)
    assert row.true_clicks == pytest.approx(true.mean())
    assert logged.true_clicks == pytest.approx(true_logged.mean())
    assert row.true_better_pct == pytest.approx(100.0 * np.mean(true > true_logged + 1e-9))
    assert logged.better_pct == 0.0 and row.latency_p99_ms >= row.latency_median_ms >= 0.0
    assert "greedy-by-score" in format_table([logged, row])
