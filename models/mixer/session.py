"""The session model: after each page the user leaves with a probability that rises with ad load.

A session is a run of pages (requests) by one user. After page t the user exits with

    p_exit = sigmoid(exit_logit + patience_u + ad_weight · sensitivity_u · load_t − engagement_weight · eng_t)

where load_t = load_decay · load_{t-1} + ads_t is the decayed count of ads the user has seen this session
(ads_t on page t), eng_t the page's expected organic clicks, and the session ends at `max_depth` pages
regardless. So every ad raises the exit probability of this page and, decaying, of the pages after it,
and an ad also lowers eng_t by displacing an organic item: too many ads end sessions early and lose the
reward of the pages that would have followed. This is the long-term term of the reward: a per-page rule
(the greedy baseline) cannot see it, a Q-function with γ > 0 can.

Users differ (seeded by the environment seed): sensitivity_u = exp(sensitivity_sigma · z_u) with z_u
correlated (`sensitivity_age`) with the user's standardised age, so it is partly visible in the
state; patience_u = -patience_weight · the standardised log number of ratings (heavy raters browse longer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SessionConfig:
    max_depth: int = 20
    exit_logit: float = -2.6
    ad_weight: float = 0.12
    load_decay: float = 0.7
    engagement_weight: float = 0.6
    sensitivity_sigma: float = 0.8
    sensitivity_age: float = 0.8
    patience_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.max_depth < 1:
            raise ValueError(f"SessionConfig.max_depth must be >= 1, got {self.max_depth}")
        if not 0 <= self.load_decay < 1:
            raise ValueError(f"SessionConfig.load_decay must be in [0, 1), got {self.load_decay}")
        if not 0 <= self.sensitivity_age <= 1:
            raise ValueError(f"SessionConfig.sensitivity_age must be in [0, 1], got {self.sensitivity_age}")
        for name in ("ad_weight", "engagement_weight", "sensitivity_sigma", "patience_weight"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"SessionConfig.{name} must be a finite number >= 0, got {v}")
        if not np.isfinite(self.exit_logit):
            raise ValueError(f"SessionConfig.exit_logit must be finite, got {self.exit_logit}")


def _standardise(x: npt.NDArray[np.floating]) -> F64:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


class SessionModel:
    """Per-user traits (seeded) and the exit probability."""

    def __init__(self, config: SessionConfig, user_age: npt.NDArray[np.floating],
                 n_ratings: npt.NDArray[np.floating], seed: int) -> None:
        self.config = c = config
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E55]))
        a = c.sensitivity_age
        z = a * _standardise(user_age) + np.sqrt(1 - a * a) * rng.standard_normal(len(user_age))
        self.sensitivity: F64 = np.exp(c.sensitivity_sigma * z)
        self.patience: F64 = -c.patience_weight * _standardise(np.log1p(n_ratings))

    def next_load(self, load: F64, ads: npt.NDArray[np.integer]) -> F64:
        out: F64 = self.config.load_decay * load + ads
        return out

    def exit_probability(self, users: npt.NDArray[np.int64], load: F64, engagement: F64) -> F64:
        """P(exit after this page) given the load after it and the page's expected organic clicks."""
        c = self.config
        logit = (c.exit_logit + self.patience[users] + c.ad_weight * self.sensitivity[users] * load
                 - c.engagement_weight * engagement)
        out: F64 = 1.0 / (1.0 + np.exp(-logit))
        return out
