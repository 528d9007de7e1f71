"""User activeness as in DRN (Zheng et al., WWW 2018, §4.4): a survival model of user returns, the
second part of the reward (reward = click + β·activeness).

The model, per user, over the user's requests in event-time order:
- the first request seen starts a "life" at S0 (0.5);
- between requests the survival S decays with a constant hazard λ0: S(t + Δ) = S(t)·exp(-λ0·Δ);
- a return (the user's next request within T0 = 24 h) adds Sa (0.32) to the decayed value, capped at 1;
- a gap longer than T0 means the user left: that life ends, and the next request starts a new life at S0.

The activeness *reward* of a request is what its list led to: S right after the user's next request
when they came back within T0 (the bump included), else the decayed survival at the horizon
S·exp(-λ0·T0). When the log ends before T0 has passed (censored), the decay runs only up to the end of
the log: we do not know yet whether the user returns, and do not punish late requests for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ActivenessConfig:
    """DRN's survival-model constants: λ0 per second, S0, Sa, cap, T0 in millis."""

    hazard_per_s: float = 1.2e-5
    s0: float = 0.5
    sa: float = 0.32
    cap: float = 1.0
    horizon_ms: int = DAY_MS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.hazard_per_s) and self.hazard_per_s >= 0):
            raise ValueError(f"ActivenessConfig.hazard_per_s must be finite and >= 0, got {self.hazard_per_s}")
        if not 0 < self.cap <= 1:
            raise ValueError(f"ActivenessConfig.cap must be in (0, 1], got {self.cap}")
        if not 0 <= self.s0 <= self.cap:
            raise ValueError(f"ActivenessConfig.s0 must be in [0, cap={self.cap}], got {self.s0}")
        if not (math.isfinite(self.sa) and self.sa >= 0):
            raise ValueError(f"ActivenessConfig.sa must be finite and >= 0, got {self.sa}")
        if self.horizon_ms < 1:
            raise ValueError(f"ActivenessConfig.horizon_ms (T0) must be >= 1 ms, got {self.horizon_ms}")

    def decay(self, gap_ms: float) -> float:
        """Survival factor over a gap: exp(-λ0·Δ) with Δ in seconds."""
        return math.exp(-self.hazard_per_s * max(float(gap_ms), 0.0) / 1000.0)


def survival_after_requests(times_ms: Sequence[int], cfg: ActivenessConfig) -> npt.NDArray[np.float64]:
    """S right after each request of one user (times in non-decreasing order)."""
    out = np.empty(len(times_ms), dtype=np.float64)
    s = cfg.s0
    prev: int | None = None
    for k, t in enumerate(times_ms):
        t = int(t)
        if prev is not None and t < prev:
            raise ValueError(f"request times must be non-decreasing, got {t} after {prev}")
        new_life = prev is None or t - prev > cfg.horizon_ms  # first request, or back after leaving
        s = cfg.s0 if new_life or prev is None else min(cfg.cap, s * cfg.decay(t - prev) + cfg.sa)
        out[k] = s
        prev = t
    return out


def activeness_rewards(
    times_ms: Sequence[int], log_end_ms: int, cfg: ActivenessConfig
) -> npt.NDArray[np.float64]:
    """The activeness reward of each request of one user (see the module docstring).

    `log_end_ms` is where the log ends (exclusive); a request whose horizon reaches past it without a
    return is censored at it.
    """
    s_after = survival_after_requests(times_ms, cfg)
    n = len(times_ms)
    out = np.empty(n, dtype=np.float64)
    for k in range(n):
        t = int(times_ms[k])
        if k + 1 < n and int(times_ms[k + 1]) - t <= cfg.horizon_ms:
            out[k] = s_after[k + 1]
        else:
            seen = min(cfg.horizon_ms, max(int(log_end_ms) - t, 0))
            out[k] = s_after[k] * cfg.decay(seen)
    return out
