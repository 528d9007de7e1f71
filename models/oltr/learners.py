"""The three online learners of a linear ranker on LETOR queries, one simulation loop for all of them.

- **DBGD** (Yue & Joachims 2009): one explore direction u (unit sphere · δ), team-draft interleaving of
  w and w + u, w ← w + η·u when the explore list wins (models/oltr/simulation.py runs them).
- **MGD** (Schuth et al. 2016): n explore directions, team-draft multileaving of w and the n candidates,
  w ← w + η·mean(u_j over the candidates that got more clicks than w) — the same rule the minor-update job
  applies per window to its accepted explore seeds.
- **PDGD** (Oosterhuis & de Rijke 2018): the shown list is sampled from Plackett–Luce over x·w, and
  w ← w + η·Σ_d c_d x_d with PDGD's debiased pairwise coefficients (models/pdgd.py).

Defaults are the CIKM 2018 paper's: δ = 1, η = 0.01 (DBGD, MGD) and η = 0.1 (PDGD), zero init, 10 results,
learning-rate decay off (the paper's 0.9999977 per update changes η by under 3% over 10k impressions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.interleave import Outcome, credit, multileave, multileave_credit, team_draft
from models.oltr.letor import Query
from models.pdgd import document_weights, plackett_luce_sample
from models.perturbation import Perturbation, explore_delta

LEARNERS = ("dbgd", "mgd", "pdgd")
#: The paper's learning rates: η of DBGD/MGD steps along a unit direction; PDGD's of its gradient.
DEFAULT_ETA = {"dbgd": 0.01, "mgd": 0.01, "pdgd": 0.1}

Array = npt.NDArray[np.float64]


def rank(features: Array, w: Array, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Documents by descending score; ties (all of them at zero init) broken uniformly at random."""
    perm = rng.permutation(features.shape[0])
    order: npt.NDArray[np.int64] = perm[np.argsort(-(features[perm] @ w), kind="stable")]
    return order


@dataclass
class Shown:
    """One impression: the documents shown (best first) and what the learner needs to learn from it."""

    docs: list[int]
    picks: list[object]
    directions: list[Array]
    #: PDGD: the scores the list was sampled from, and the query's features.
    scores: Array | None = None
    features: Array | None = None


class Dbgd:
    """DBGD: one explore direction per impression, team-draft interleaving."""

    def __init__(self, n_features: int, eta: float, delta: float, k: int) -> None:
        self.w = np.zeros(n_features)
        self.eta, self.delta, self.k = eta, delta, k

    def show(self, q: Query, rng: np.random.Generator) -> Shown:
        seed = int(rng.integers(0, 2**62))
        u = explore_delta(self.w, seed, self.delta, Perturbation.UNIT_SPHERE).astype(np.float64)
        current, explore = rank(q.features, self.w, rng), rank(q.features, self.w + u, rng)
        picks = team_draft(current.tolist(), explore.tolist(), self.k, rng)
        return Shown([p.item for p in picks], list(picks), [u])

    def learn(self, shown: Shown, clicked: Sequence[int]) -> bool:
        outcome = credit([(p.item, p.team) for p in shown.picks], [shown.docs[i] for i in clicked])  # type: ignore[attr-defined]
        if outcome is Outcome.EXPLORE:
            self.w = self.w + self.eta * shown.directions[0]
            return True
        return False


class Mgd:
    """MGD: n explore directions per impression, team-draft multileaving, the mean of the winners."""

    def __init__(self, n_features: int, eta: float, delta: float, k: int, n_candidates: int) -> None:
        if n_candidates < 1:
            raise ValueError(f"MGD needs n_candidates >= 1, got {n_candidates}")
        self.w = np.zeros(n_features)
        self.eta, self.delta, self.k, self.n = eta, delta, k, n_candidates

    def show(self, q: Query, rng: np.random.Generator) -> Shown:
        # n unit-sphere directions · δ at once (in one process no seed needs to travel, unlike the job's ΔW).
        g = rng.standard_normal((self.n, self.w.size))
        us = list(self.delta * g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300))
        # All n + 1 rankings at once (one random tie-break order); a team's pick is always in its top k.
        perm = rng.permutation(q.features.shape[0])
        weights = np.column_stack([self.w, *(self.w + u for u in us)])
        order = np.argsort(-(q.features[perm] @ weights), axis=0, kind="stable")[: self.k]
        lists = [perm[order[:, j]].tolist() for j in range(self.n + 1)]
        picks = multileave(lists, self.k, rng)
        return Shown([p.item for p in picks], list(picks), us)

    def learn(self, shown: Shown, clicked: Sequence[int]) -> bool:
        outcomes = multileave_credit(shown.picks, [shown.docs[i] for i in clicked], self.n + 1)  # type: ignore[arg-type]
        winners = [u for u, o in zip(shown.directions, outcomes, strict=True) if o is Outcome.EXPLORE]
        if winners:
            self.w = self.w + self.eta * np.mean(winners, axis=0)
            return True
        return False


class Pdgd:
    """PDGD: a Plackett–Luce sample of x·w is shown; the debiased pairwise gradient moves w."""

    def __init__(self, n_features: int, eta: float, k: int) -> None:
        self.w = np.zeros(n_features)
        self.eta, self.k = eta, k

    def show(self, q: Query, rng: np.random.Generator) -> Shown:
        scores = q.features @ self.w
        docs = plackett_luce_sample(scores, self.k, rng)
        return Shown(docs.tolist(), [], [], scores, q.features)

    def learn(self, shown: Shown, clicked: Sequence[int]) -> bool:
        if not clicked:
            return False
        assert shown.scores is not None and shown.features is not None
        flags = np.zeros(len(shown.docs), dtype=bool)
        flags[list(clicked)] = True
        docs, coef = document_weights(shown.scores, shown.docs, flags)
        if docs.size == 0:
            return False
        self.w = self.w + self.eta * (coef @ shown.features[docs])
        return True


def make_learner(name: str, n_features: int, *, eta: float | None = None, delta: float = 1.0, k: int = 10,
                 n_candidates: int = 49) -> Dbgd | Mgd | Pdgd:
    """A learner by name ("dbgd", "mgd", "pdgd"); `eta` None takes the paper's for that learner."""
    if name not in LEARNERS:
        raise ValueError(f"learner must be one of {', '.join(LEARNERS)}, got {name!r}")
    rate = DEFAULT_ETA[name] if eta is None else eta
    if name == "dbgd":
        return Dbgd(n_features, rate, delta, k)
    if name == "mgd":
        return Mgd(n_features, rate, delta, k, n_candidates)
    return Pdgd(n_features, rate, k)
