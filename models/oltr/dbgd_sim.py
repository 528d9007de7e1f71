"""Online LTR on LETOR data with simulated clicks: DBGD (Yue & Joachims 2009) with a linear ranker,
team-draft interleaving from models/interleave.py and the perturbation of models/perturbation.py.

The protocol of Schuth et al. 2016 and Oosterhuis & de Rijke 2018: zero init, δ = 1 (a unit-sphere
direction scaled by δ), η = 0.01, 10 results per query; per impression a training query is drawn
uniformly, current and explore rankers are interleaved, the click model clicks, and an EXPLORE win
moves w ← w + η·u. Online performance is Σ_t γ^t · NDCG@10(shown list), γ = 0.9995; offline
performance is the mean NDCG@10 of the current ranker on the test queries. Queries without any
relevant document carry no signal for NDCG and are left out of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.interleave import Outcome, credit, team_draft
from models.oltr.letor import Query
from models.oltr.metrics import ndcg_at_k
from models.perturbation import Perturbation, explore_delta
from models.simulator.click_models import click_model


@dataclass(frozen=True)
class OltrConfig:
    click_model: str = "navigational"
    impressions: int = 10_000
    delta: float = 1.0
    eta: float = 0.01
    k: int = 10
    discount: float = 0.9995
    seed: int = 0
    eval_every: int = 0  # also record offline NDCG every this many impressions (0: only at the end)

    def __post_init__(self) -> None:
        click_model(self.click_model)
        if self.impressions < 1:
            raise ValueError(f"OltrConfig.impressions must be >= 1, got {self.impressions}")
        if not (np.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"OltrConfig.delta must be a finite number > 0, got {self.delta}")
        if not (np.isfinite(self.eta) and self.eta > 0):
            raise ValueError(f"OltrConfig.eta must be a finite number > 0, got {self.eta}")
        if self.k < 1:
            raise ValueError(f"OltrConfig.k must be >= 1, got {self.k}")
        if not 0 < self.discount <= 1:
            raise ValueError(f"OltrConfig.discount must be in (0, 1], got {self.discount}")
        if self.eval_every < 0:
            raise ValueError(f"OltrConfig.eval_every must be >= 0, got {self.eval_every}")


@dataclass(frozen=True)
class OltrResult:
    click_model: str
    seed: int
    impressions: int
    offline_ndcg: float
    online_ndcg: float  # discounted cumulative NDCG@k of the shown lists
    mean_online_ndcg: float
    explore_wins: int
    weights: npt.NDArray[np.float64]
    curve: list[tuple[int, float]] = field(default_factory=list)  # (impressions so far, offline NDCG)


def with_relevant(queries: Sequence[Query]) -> list[Query]:
    return [q for q in queries if q.labels.max() > 0]


def rank(features: npt.NDArray[np.float64], w: npt.NDArray[np.float64],
         rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Documents by descending score; ties (all of them at zero init) broken uniformly at random."""
    perm = rng.permutation(features.shape[0])
    order: npt.NDArray[np.int64] = perm[np.argsort(-(features[perm] @ w), kind="stable")]
    return order


def offline_ndcg(queries: Sequence[Query], w: npt.NDArray[np.float64], k: int, seed: int = 0) -> float:
    """Mean NDCG@k of the linear ranker w (random tie-breaking from a fixed seed, so it is repeatable)."""
    rng = np.random.default_rng(seed)
    scored = [ndcg_at_k(q.labels[rank(q.features, w, rng)], q.labels, k) for q in with_relevant(queries)]
    return float(np.mean(scored)) if scored else 0.0


def run_dbgd(train: Sequence[Query], test: Sequence[Query], cfg: OltrConfig) -> OltrResult:
    """One DBGD run; deterministic for a given config and data."""
    queries = with_relevant(train)
    if not queries:
        raise ValueError("no training query has a relevant document")
    n_features = queries[0].features.shape[1]
    clicks = click_model(cfg.click_model)
    rng = np.random.default_rng(cfg.seed)
    w = np.zeros(n_features)
    online = 0.0
    online_sum = 0.0
    wins = 0
    curve: list[tuple[int, float]] = []
    weight = 1.0
    for t in range(cfg.impressions):
        q = queries[int(rng.integers(len(queries)))]
        explore_seed = int(rng.integers(0, 2**62))
        u = explore_delta(w, explore_seed, cfg.delta, Perturbation.UNIT_SPHERE).astype(np.float64)
        current = rank(q.features, w, rng)
        explore = rank(q.features, w + u, rng)
        picks = team_draft(current.tolist(), explore.tolist(), cfg.k, rng)
        shown = [p.item for p in picks]
        labels = q.labels[shown]
        clicked = clicks.sample(labels, rng)
        ndcg = ndcg_at_k(labels, q.labels, cfg.k)
        online += weight * ndcg
        online_sum += ndcg
        weight *= cfg.discount
        if credit([(p.item, p.team) for p in picks], [shown[i] for i in clicked]) is Outcome.EXPLORE:
            w = w + cfg.eta * u
            wins += 1
        if cfg.eval_every and (t + 1) % cfg.eval_every == 0:
            curve.append((t + 1, offline_ndcg(test, w, cfg.k)))
    return OltrResult(cfg.click_model, cfg.seed, cfg.impressions, offline_ndcg(test, w, cfg.k), online,
                      online_sum / cfg.impressions, wins, w, curve)
