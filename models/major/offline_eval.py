"""Offline evaluation as in DRN's Table 4: each method re-ranks the logged list of every held-out
impression; the logged clicks say how good its order is.

Over the held-out impressions with at least one click (a list without a click ranks every order the
same, so it only dilutes every method alike):
- `ctr`: share of lists whose top-ranked item was clicked (the CTR of the method's first slot);
- `precision_at_5`: clicked share of the method's top 5;
- `ndcg`: nDCG of the whole re-ranked list, gain 1 per clicked item, log2 discount.
Ties keep the logged order. The numbers are not DRN's (other data, other lists): compare orderings.

Logged clicks favour the logging ranker: users examine the top slots more, so whatever it put first got
the clicks, and a method that agrees with it looks good (position bias). `ndcg_ips` corrects for it the
counterfactual-LTR way: each click counts 1/ρ(logged position), ρ the examination propensity estimated
from the training part of the range (`position_propensity`), and nDCG is taken on those gains. The gate
uses it by default (models/major/update.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.drn import DrnQNetwork
from models.transitions import TransitionSet

#: states [B, Ds], actions [B, N, Da], mask [B, N] -> scores [B, N] (higher = ranked first).
Scorer = Callable[[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]],
                  npt.NDArray[np.float32]]

#: The two rows of DRN's Table 4 (offline, news data) this project quotes: (CTR, nDCG).
DRN_TABLE4: dict[str, tuple[float, float]] = {"LR": (0.1262, 0.3659), "DDQN": (0.1662, 0.4877)}


@dataclass(frozen=True)
class OfflineMetrics:
    method: str
    impressions: int  # held-out impressions with at least one click
    ctr: float
    precision_at_5: float
    ndcg: float
    ndcg_ips: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def position_propensity(clicks: npt.ArrayLike, mask: npt.ArrayLike, floor: float = 0.05) -> npt.NDArray[np.float64]:
    """ρ(p): CTR at logged position p over CTR at position 0, made non-increasing and floored (a
    relevance-blind estimate: fair when the logging ranker's order says little about relevance)."""
    ck = np.asarray(clicks, dtype=bool)
    mk = np.asarray(mask, dtype=bool)
    shown = mk.sum(axis=0).astype(np.float64)
    ctr = np.where(shown > 0, (ck & mk).sum(axis=0) / np.maximum(shown, 1), 0.0)
    if ctr.size == 0 or ctr[0] <= 0:
        return np.ones(ck.shape[1] if ck.ndim == 2 else 0)
    return np.clip(np.minimum.accumulate(ctr / ctr[0]), floor, 1.0)


def ranking_metrics(method: str, scores: npt.ArrayLike, clicks: npt.ArrayLike,
                    mask: npt.ArrayLike, propensity: npt.ArrayLike | None = None) -> OfflineMetrics:
    """Metrics of one method's scores [n, K] against the logged clicks [n, K] (mask: real slots;
    columns are logged positions). `propensity` [K] gives ndcg_ips."""
    sc = np.asarray(scores, dtype=np.float64)
    ck = np.asarray(clicks, dtype=bool)
    mk = np.asarray(mask, dtype=bool)
    keep = (ck & mk).any(axis=1)
    sc, ck, mk = sc[keep], ck[keep] & mk[keep], mk[keep]
    n = int(sc.shape[0])
    if n == 0:
        return OfflineMetrics(method, 0, float("nan"), float("nan"), float("nan"))
    order = np.argsort(np.where(mk, -sc, np.inf), axis=1, kind="stable")  # ties: logged order
    ranked = np.take_along_axis(ck, order, axis=1).astype(np.float64)
    k = ranked.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (ranked * disc).sum(axis=1)
    n_clicked = ck.sum(axis=1)
    idcg = np.cumsum(disc)[n_clicked - 1]
    top5 = min(5, k)
    p5 = ranked[:, :top5].sum(axis=1) / np.minimum(mk.sum(axis=1), 5)
    ndcg_ips = float("nan")
    if propensity is not None:
        ndcg_ips = float(_ndcg_ips_rows(ck, order, propensity).mean())
    return OfflineMetrics(method, n, float(ranked[:, 0].mean()), float(p5.mean()), float((dcg / idcg).mean()),
                          ndcg_ips)


def _ndcg_ips_rows(ck: npt.NDArray[np.bool_], order: npt.NDArray[np.int64],
                   propensity: npt.ArrayLike) -> npt.NDArray[np.float64]:
    k = ck.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    gains = ck / np.asarray(propensity, dtype=np.float64)[None, :k]
    ranked_g = np.take_along_axis(gains, order, axis=1)
    ideal = -np.sort(-gains, axis=1)
    out: npt.NDArray[np.float64] = (ranked_g * disc).sum(axis=1) / (ideal * disc).sum(axis=1)
    return out


def ndcg_ips_per_impression(scores: npt.ArrayLike, clicks: npt.ArrayLike, mask: npt.ArrayLike,
                            propensity: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """ndcg_ips of each impression with a click (the rows `ranking_metrics` averages), in row order: what a
    paired comparison of two methods on the same impressions needs."""
    sc = np.asarray(scores, dtype=np.float64)
    ck = np.asarray(clicks, dtype=bool)
    mk = np.asarray(mask, dtype=bool)
    keep = (ck & mk).any(axis=1)
    sc, ck, mk = sc[keep], ck[keep] & mk[keep], mk[keep]
    order = np.argsort(np.where(mk, -sc, np.inf), axis=1, kind="stable")
    return _ndcg_ips_rows(ck, order, propensity)


def score_rows(data: TransitionSet, rows: npt.NDArray[np.int64], scorer: Scorer,
               batch: int = 4096) -> npt.NDArray[np.float32]:
    """A scorer's scores [len(rows), K] for the impressions `rows`, in batches."""
    parts = [scorer(data.states[r], data.actions[r], data.mask[r])
             for r in (rows[i: i + batch] for i in range(0, rows.size, batch))]
    return np.concatenate(parts) if parts else np.zeros((0, data.mask.shape[1]), np.float32)


def network_scorer(network: DrnQNetwork) -> Scorer:
    """Q of a DRN network (on the CPU, no gradients)."""
    net = network.to("cpu").eval()

    def score(states: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
              mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            q = net(torch.from_numpy(states), torch.from_numpy(actions), torch.from_numpy(mask))
        out: npt.NDArray[np.float32] = q.numpy()
        return out

    return score


def logged_scorer() -> Scorer:
    """The order the serving ranker showed (position 0 first)."""

    def score(states: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
              mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        return np.broadcast_to(-np.arange(mask.shape[1], dtype=np.float32), mask.shape).copy()

    return score


def random_scorer(seed: int) -> Scorer:
    rng = np.random.default_rng(seed)

    def score(states: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
              mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        out = np.asarray(rng.random(mask.shape, dtype=np.float32), dtype=np.float32)
        return out

    return score


def offline_table(data: TransitionSet, rows: npt.NDArray[np.int64], scorers: Mapping[str, Scorer],
                  batch: int = 4096, propensity: npt.ArrayLike | None = None) -> list[OfflineMetrics]:
    """One OfflineMetrics per scorer on the impressions `rows`, in the scorers' order."""
    out = []
    for name, scorer in scorers.items():
        scores = score_rows(data, rows, scorer, batch)
        out.append(ranking_metrics(name, scores, data.clicks[rows], data.mask[rows], propensity))
    return out


def markdown_table(rows: list[OfflineMetrics]) -> str:
    """The table of one run, with DRN's quoted Table 4 numbers beside it where the method matches."""
    lines = ["| method | CTR | Precision@5 | nDCG | nDCG-IPS | DRN Table 4 CTR | DRN Table 4 nDCG |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = DRN_TABLE4.get(r.method.split(" ")[0])
        ref_txt = f"{ref[0]:.4f} | {ref[1]:.4f}" if ref else "- | -"
        lines.append(f"| {r.method} | {r.ctr:.4f} | {r.precision_at_5:.4f} | {r.ndcg:.4f} | {r.ndcg_ips:.4f} "
                     f"| {ref_txt} |")
    return "\n".join(lines)
