"""Online LTR on LETOR data with simulated clicks: a linear ranker learned by DBGD, MGD or PDGD
(models/oltr/learners.py), with the interleaving of models/interleave.py and the perturbation of
models/perturbation.py.

The protocol of Schuth et al. 2016 and Oosterhuis & de Rijke 2018: zero init, δ = 1 (a unit-sphere
direction scaled by δ), η = 0.01 (DBGD, MGD) or 0.1 (PDGD), 10 results per query; per impression a
training query is drawn uniformly, the learner shows a list, the click model clicks, and the learner
learns from the clicks. Online performance is Σ_t γ^t · NDCG@10(shown list), γ = 0.9995; offline
performance is the mean NDCG@10 of the current ranker on the test queries. Queries without any
relevant document carry no signal for NDCG and are left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.oltr.learners import DEFAULT_ETA, LEARNERS, make_learner, rank
from models.oltr.letor import Query
from models.oltr.metrics import ndcg_at_k
from models.simulator.click_models import click_model


@dataclass(frozen=True)
class OltrConfig:
    click_model: str = "navigational"
    impressions: int = 10_000
    delta: float = 1.0
    #: None: the paper's for the learner (models/oltr/learners.DEFAULT_ETA).
    eta: float | None = None
    k: int = 10
    discount: float = 0.9995
    seed: int = 0
    eval_every: int = 0  # also record offline NDCG every this many impressions (0: only at the end)
    learner: str = "dbgd"
    #: MGD's explore candidates per impression (the paper: 49).
    n_candidates: int = 49

    def __post_init__(self) -> None:
        click_model(self.click_model)
        if self.impressions < 1:
            raise ValueError(f"OltrConfig.impressions must be >= 1, got {self.impressions}")
        if not (np.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"OltrConfig.delta must be a finite number > 0, got {self.delta}")
        if self.eta is not None and not (np.isfinite(self.eta) and self.eta > 0):
            raise ValueError(f"OltrConfig.eta must be a finite number > 0, got {self.eta}")
        if self.k < 1:
            raise ValueError(f"OltrConfig.k must be >= 1, got {self.k}")
        if not 0 < self.discount <= 1:
            raise ValueError(f"OltrConfig.discount must be in (0, 1], got {self.discount}")
        if self.eval_every < 0:
            raise ValueError(f"OltrConfig.eval_every must be >= 0, got {self.eval_every}")
        if self.learner not in LEARNERS:
            raise ValueError(f"OltrConfig.learner must be one of {', '.join(LEARNERS)}, got {self.learner!r}")
        if self.n_candidates < 1:
            raise ValueError(f"OltrConfig.n_candidates must be >= 1, got {self.n_candidates}")

    @property
    def learning_rate(self) -> float:
        """η as run: the given one, else the paper's for the learner."""
        return DEFAULT_ETA[self.learner] if self.eta is None else self.eta


@dataclass(frozen=True)
class OltrResult:
    click_model: str
    seed: int
    impressions: int
    learner: str
    offline_ndcg: float
    online_ndcg: float  # discounted cumulative NDCG@k of the shown lists
    mean_online_ndcg: float
    #: Impressions that moved the weights (DBGD/MGD: an explore win; PDGD: any inferred preference).
    explore_wins: int
    weights: npt.NDArray[np.float64]
    curve: list[tuple[int, float]] = field(default_factory=list)  # (impressions so far, offline NDCG)


def with_relevant(queries: Sequence[Query]) -> list[Query]:
    return [q for q in queries if q.labels.max() > 0]


def offline_ndcg(queries: Sequence[Query], w: npt.NDArray[np.float64], k: int, seed: int = 0) -> float:
    """Mean NDCG@k of the linear ranker w (random tie-breaking from a fixed seed, so it is repeatable)."""
    rng = np.random.default_rng(seed)
    scored = [ndcg_at_k(q.labels[rank(q.features, w, rng)], q.labels, k) for q in with_relevant(queries)]
    return float(np.mean(scored)) if scored else 0.0


def run_oltr(train: Sequence[Query], test: Sequence[Query], cfg: OltrConfig) -> OltrResult:
    """One run of cfg.learner; deterministic for a given config and data."""
    queries = with_relevant(train)
    if not queries:
        raise ValueError("no training query has a relevant document")
    clicks = click_model(cfg.click_model)
    learner = make_learner(cfg.learner, queries[0].features.shape[1], eta=cfg.learning_rate, delta=cfg.delta, k=cfg.k,
                           n_candidates=cfg.n_candidates)
    rng = np.random.default_rng(cfg.seed)
    online = 0.0
    online_sum = 0.0
    moves = 0
    curve: list[tuple[int, float]] = []
    weight = 1.0
    for t in range(cfg.impressions):
        q = queries[int(rng.integers(len(queries)))]
        shown = learner.show(q, rng)
        labels = q.labels[shown.docs]
        clicked = clicks.sample(labels, rng)
        ndcg = ndcg_at_k(labels, q.labels, cfg.k)
        online += weight * ndcg
        online_sum += ndcg
        weight *= cfg.discount
        moves += int(learner.learn(shown, clicked))
        if cfg.eval_every and (t + 1) % cfg.eval_every == 0:
            curve.append((t + 1, offline_ndcg(test, learner.w, cfg.k)))
    return OltrResult(cfg.click_model, cfg.seed, cfg.impressions, cfg.learner,
                      offline_ndcg(test, learner.w, cfg.k), online, online_sum / cfg.impressions, moves,
                      learner.w, curve)


def run_dbgd(train: Sequence[Query], test: Sequence[Query], cfg: OltrConfig) -> OltrResult:
    """One DBGD run (cfg.learner is taken as dbgd)."""
    from dataclasses import replace

    return run_oltr(train, test, replace(cfg, learner="dbgd"))
