"""Seeded ad candidates: a catalogue of ads with bids and a click model, and the auction that picks
which ads a request may show.

Each ad has a cost-per-click bid (log-normal), a vector in the simulator's feature-MF user space and a
bias. The true click probability of ad j for user u at full examination is
sigmoid(ctr_logit + bias_j + ctr_affinity · <vec_j, user_vec_u>); the ad system's prediction adds a
logit noise of `ctr_noise` (drawn per request, so the mixer only sees a re-predicted value, never the
truth). The auction ranks a request's `candidates` ads by predicted eCPM (bid × predicted CTR) and
hands the best `max_ads` to the mixer; the mixer only decides where they go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AdConfig:
    n_ads: int = 200
    candidates: int = 4
    bid_median: float = 6.0
    bid_sigma: float = 0.5
    ctr_logit: float = -2.2
    ctr_affinity: float = 0.5
    ctr_noise: float = 0.3

    def __post_init__(self) -> None:
        if self.n_ads < 1 or not 1 <= self.candidates <= self.n_ads:
            raise ValueError(f"AdConfig needs 1 <= candidates <= n_ads, got {self.candidates}, {self.n_ads}")
        for name in ("bid_median", "bid_sigma", "ctr_noise", "ctr_affinity"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0) or (name == "bid_median" and v == 0):
                raise ValueError(f"AdConfig.{name} must be a finite number > 0 (>= 0 for spreads), got {v}")


def _sigmoid(x: F64) -> F64:
    out: F64 = 1.0 / (1.0 + np.exp(-x))
    return out


class AdCatalog:
    """The ads of one environment seed."""

    def __init__(self, config: AdConfig, user_vectors: npt.NDArray[np.floating], seed: int) -> None:
        self.config = c = config
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xAD]))
        dim = user_vectors.shape[1]
        scale = float(np.sqrt(np.mean(np.sum(user_vectors.astype(np.float64) ** 2, axis=1)))) or 1.0
        self.bids: F64 = c.bid_median * np.exp(c.bid_sigma * rng.standard_normal(c.n_ads))
        self.vectors: F64 = rng.standard_normal((c.n_ads, dim)) / np.sqrt(dim)
        self.bias: F64 = 0.5 * rng.standard_normal(c.n_ads)
        self._users = user_vectors.astype(np.float64) / scale  # unit RMS norm: affinity ~ N(0, 1)

    def true_ctr(self, users: npt.NDArray[np.int64], ads: npt.NDArray[np.int64]) -> F64:
        """(B, K) click probabilities of ads (B, K) for users (B,) at full examination."""
        aff = np.einsum("bd,bkd->bk", self._users[users], self.vectors[ads])
        return _sigmoid(self.config.ctr_logit + self.bias[ads] + self.config.ctr_affinity * aff)

    def auction(self, users: npt.NDArray[np.int64], rngs: list[np.random.Generator],
                max_ads: int) -> tuple[F64, F64, F64]:
        """For each request: the `max_ads` winning ads' (bid, true CTR, predicted CTR), best first, (B, max_ads)."""
        c = self.config
        ads = np.stack([r.choice(c.n_ads, size=c.candidates, replace=False) for r in rngs]) \
            if rngs else np.empty((0, c.candidates), dtype=np.int64)
        noise = np.stack([r.standard_normal(c.candidates) for r in rngs]) if rngs else np.empty(ads.shape)
        p_true = self.true_ctr(users, ads)
        p_pred = _sigmoid(np.log(p_true / (1 - p_true)) + c.ctr_noise * noise)
        bids = self.bids[ads]
        order = np.argsort(-(bids * p_pred), axis=1, kind="stable")[:, :max_ads]
        take = np.take_along_axis
        return take(bids, order, 1), take(p_true, order, 1), take(p_pred, order, 1)
