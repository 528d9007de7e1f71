"""Pairwise Differentiable Gradient Descent (Oosterhuis & de Rijke, CIKM 2018), model-agnostic.

The ranker shows a ranking sampled from the Plackett–Luce distribution over its scores f(d). From the
clicks, a clicked document is preferred over every unclicked one ranked above the last click and over
the one right after it (what the user is assumed to have examined). Each preference d_k ≻ d_l adds

    ρ(d_k, d_l, R) · ∇ P(d_k ≻ d_l),   P(d_k ≻ d_l) = e^{f(d_k)} / (e^{f(d_k)} + e^{f(d_l)}),

where ρ = P(R*) / (P(R) + P(R*)) and R* is the shown ranking with d_k and d_l swapped: the debiasing
weight that makes the estimate unbiased w.r.t. the position bias the sampling itself creates.

`document_weights` returns the gradient as one coefficient per document, Σ_d c_d · ∇f(d): a linear
ranker adds η · Σ c_d x_d to its weights; a network backpropagates -Σ c_d f(d) (autograd).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def plackett_luce_sample(scores: npt.ArrayLike, k: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """The top k of a ranking drawn from Plackett–Luce over `scores` (softmax without replacement), by
    the Gumbel trick: argsort of scores + Gumbel noise is exactly that distribution."""
    s = np.asarray(scores, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    keys = s + rng.gumbel(size=s.size)
    order: npt.NDArray[np.int64] = np.argsort(-keys, kind="stable")[: min(k, s.size)]
    return order


def _log_ranking_prob(s: npt.NDArray[np.float64], ranking: npt.NDArray[np.int64], lo: int, hi: int) -> float:
    """log P of placing ranking[lo..hi] (inclusive) given ranking[:lo] placed before, under Plackett–Luce."""
    placed = np.zeros(s.size, dtype=bool)
    placed[ranking[:lo]] = True
    e = np.exp(s - s.max())
    remaining = float(e[~placed].sum())
    total = 0.0
    for i in range(lo, hi + 1):
        d = int(ranking[i])
        total += np.log(e[d]) - np.log(max(remaining, 1e-300))
        remaining -= float(e[d])
    return total


def examined_preferences(clicked: npt.ArrayLike) -> list[tuple[int, int]]:
    """(clicked position, unclicked position) pairs PDGD infers: every unclicked position above the last
    click and the one right after it."""
    c = np.asarray(clicked, dtype=bool)
    if not c.any():
        return []
    last = int(np.flatnonzero(c)[-1])
    examined = range(min(last + 2, c.size))
    negatives = [j for j in examined if not c[j]]
    return [(i, j) for i in np.flatnonzero(c).tolist() for j in negatives]


def document_weights(scores: npt.ArrayLike, ranking: npt.ArrayLike, clicked: npt.ArrayLike,
                     current: npt.ArrayLike | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """PDGD's gradient for one impression as (document indices, coefficients): Σ_d c_d ∇f(d).

    `scores`: f over all the query's documents (the ones the ranking was sampled from); `ranking`: the
    shown documents, best first; `clicked`: one flag per shown position. `current`: the scores of the model
    being updated when it is not the one that sampled (a delayed update): ρ is the sampler's, the
    preference probability P(d_k ≻ d_l) and its gradient the current model's."""
    s = np.asarray(scores, dtype=np.float64)
    f = s if current is None else np.asarray(current, dtype=np.float64)
    if f.shape != s.shape:
        raise ValueError(f"current has {f.size} scores for {s.size} documents")
    r = np.asarray(ranking, dtype=np.int64)
    c = np.asarray(clicked, dtype=bool)
    if c.size != r.size:
        raise ValueError(f"clicked has {c.size} flags for {r.size} shown documents")
    coef: dict[int, float] = {}
    for i, j in examined_preferences(c):
        dk, dl = int(r[i]), int(r[j])
        lo, hi = min(i, j), max(i, j)
        swapped = r.copy()
        swapped[i], swapped[j] = r[j], r[i]
        log_p = _log_ranking_prob(s, r, lo, hi)
        log_q = _log_ranking_prob(s, swapped, lo, hi)
        rho = 1.0 / (1.0 + np.exp(log_p - log_q))  # P(R*) / (P(R) + P(R*))
        delta = f[dk] - f[dl]
        sig = 1.0 / (1.0 + np.exp(-delta))
        w = rho * sig * (1.0 - sig)  # ρ · dP(d_k ≻ d_l) / d(f(d_k) - f(d_l))
        coef[dk] = coef.get(dk, 0.0) + w
        coef[dl] = coef.get(dl, 0.0) - w
    docs = np.array(sorted(coef), dtype=np.int64)
    return docs, np.array([coef[int(d)] for d in docs], dtype=np.float64)


def log_rest_mass(scores: npt.NDArray[np.float64], shown: Sequence[int]) -> float:
    """log Σ e^{s} over the candidates not in `shown` (-inf when every candidate was shown)."""
    rest = np.delete(np.asarray(scores, dtype=np.float64), np.asarray(shown, dtype=np.int64))
    if rest.size == 0:
        return -math.inf
    top = float(rest.max())
    return top + math.log(float(np.exp(rest - top).sum()))


def shown_document_weights(shown_scores: npt.ArrayLike, clicked: npt.ArrayLike, log_rest: float,
                           current: npt.ArrayLike | None = None
                           ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """PDGD's coefficients for the shown positions (Σ_d c_d ∇f(d)), the unshown candidates stood for by
    their total mass `log_rest` (which is never in a preference pair, so its current score does not matter).
    `current`: the shown items' scores under the model being updated, as in `document_weights`."""
    s = np.asarray(shown_scores, dtype=np.float64)
    scores = s if math.isinf(log_rest) else np.append(s, log_rest)
    cur = None
    if current is not None:
        c = np.asarray(current, dtype=np.float64)
        cur = c if math.isinf(log_rest) else np.append(c, log_rest)
    return document_weights(scores, np.arange(s.size), clicked, cur)
