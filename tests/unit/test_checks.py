"""The check suites of models/checks.py run over every ranking policy and every learner of the project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from drnflow.demo.inmemory import GreedyPolicy
from models.checks import check_learner, check_ranking_policy
from models.dbgd import DbgdConfig, DbgdLearner
from models.ge.environment import ListEnvironment
from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy
from models.weights import ParamSpec, make_model_weights_record
from operators.pdgd_ranker import PdgdRanker
from operators.ranker import Ranker, RankerConfig
from tests.unit.test_reranker import ENV, _drn_record, _ranker, _request

ENV_REQUEST = _request(ListEnvironment(ENV, seed=0), np.random.default_rng(5))
STATE, CANDIDATES = ENV_REQUEST[1], ENV_REQUEST[2]


def _drn(n_explore: int = 1) -> Ranker:
    ranker = Ranker(RankerConfig(model_id="drn", base_seed=4, n_explore=n_explore))
    ranker.apply_weights(_drn_record())
    return ranker


def _pdgd() -> PdgdRanker:
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=4), temperature=0.5)
    ranker.apply_weights(_drn_record())
    return ranker


def _oracle() -> OraclePolicy:
    items = {item: j for j, (item, _) in enumerate(CANDIDATES)}
    grades = np.random.default_rng(1).integers(0, 5, size=(1, len(items))).astype(np.int8)
    return OraclePolicy(grades, {"u1": 0}, items, "oracle")


POLICIES: dict[str, Callable[[], Any]] = {
    "drn-ranker": _drn,
    "drn-ranker-multileave": lambda: _drn(n_explore=3),
    "ge-reranker": _ranker,
    "random": lambda: RandomPolicy("random", seed=2),
    "popular": lambda: PopularPolicy("popular", column=0),
    "oracle": _oracle,
    "greedy": lambda: GreedyPolicy(_drn()),
    "pdgd-ranker": _pdgd,
}


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("k", [5, 100])
def test_every_ranking_policy_passes_the_policy_checks(name: str, k: int) -> None:
    top_m = 8 if name == "ge-reranker" else len(CANDIDATES)  # the re-ranker orders DRN's top 8 (_ranker)
    check_ranking_policy(POLICIES[name], STATE, CANDIDATES, "u1", k=k, shown=min(k, top_m))


def test_the_policy_checks_catch_an_unseeded_policy() -> None:
    class Unseeded(RandomPolicy):
        def rank(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            self.seed = int(np.random.default_rng().integers(1 << 30))
            return super().rank(*args, **kwargs)

    with pytest.raises(AssertionError, match="twice"):
        check_ranking_policy(lambda: Unseeded("random"), STATE, CANDIDATES, "u1", k=5)


W0 = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
MAJOR = make_model_weights_record("m", 1, None, "MAJOR", W0, [ParamSpec("w", (4,))], 0, [])
WIN = 60_000


def rows(window: int, version: int, explore_wins: bool) -> list[dict[str, Any]]:
    e, c = (3, 1) if explore_wins else (1, 3)
    return [{"model_id": "m", "window_start": window * WIN, "window_end": (window + 1) * WIN,
             "model_version": version, "explore_seed": 11 + window, "impressions": 4, "explore_wins": e,
             "current_wins": c, "ties": 0, "no_clicks": 0}]


@pytest.mark.parametrize("config", [DbgdConfig(), DbgdConfig(perturbation="unit_sphere", eta=1.0),
                                    DbgdConfig(min_decided=2, alpha=0.3)])
def test_the_dbgd_learner_passes_the_learner_checks(config: DbgdConfig) -> None:
    check_learner(lambda: DbgdLearner("m", config), MAJOR, rows)


def test_the_learner_checks_catch_a_learner_that_moves_on_a_loss() -> None:
    class Eager(DbgdLearner):
        def _wins(self, row: Any) -> bool:
            return True

    with pytest.raises(AssertionError, match="moved with explore losing"):
        check_learner(lambda: Eager("m", DbgdConfig()), MAJOR, rows)
