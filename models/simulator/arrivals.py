"""When which user arrives: real MovieLens rating times (or a Poisson rate), plus return visits whose
rate rises with how satisfied the user's last session left them (user activeness, as in DRN).

Base arrivals: `timestamps` replays the 100k rating events in real order, real gaps divided by
`time_compression`, cycling with an offset when exhausted; `poisson` draws exponential gaps at
`rate_per_s` and users in proportion to their real number of ratings. Returns: after a session with
satisfaction s in [0, 1] (the best grade clicked / 4; 0 without a click) the user comes back with
probability p0 + (p1 - p0)·s, after an exponential gap with mean `return_gap_s / (1 + boost · s)`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulator.movielens import MovieLens

DEFAULT_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: event time starts here, always


@dataclass(frozen=True)
class ArrivalConfig:
    mode: str = "timestamps"
    time_compression: float = 1000.0
    rate_per_s: float = 5.0
    start_ms: int = DEFAULT_START_MS
    return_p0: float = 0.1
    return_p1: float = 0.6
    return_gap_s: float = 1800.0
    return_boost: float = 3.0
    activeness_decay: float = 0.7

    def __post_init__(self) -> None:
        if self.mode not in ("timestamps", "poisson"):
            raise ValueError(f"ArrivalConfig.mode must be 'timestamps' or 'poisson', got {self.mode!r}")
        if not self.time_compression > 0:
            raise ValueError(f"ArrivalConfig.time_compression must be > 0, got {self.time_compression}")
        if not self.rate_per_s > 0:
            raise ValueError(f"ArrivalConfig.rate_per_s must be > 0, got {self.rate_per_s}")
        if self.start_ms < 0:
            raise ValueError(f"ArrivalConfig.start_ms must be >= 0, got {self.start_ms}")
        for name in ("return_p0", "return_p1", "activeness_decay"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"ArrivalConfig.{name} must be in [0, 1], got {v}")
        if not self.return_gap_s > 0:
            raise ValueError(f"ArrivalConfig.return_gap_s must be > 0, got {self.return_gap_s}")
        if not self.return_boost >= 0:
            raise ValueError(f"ArrivalConfig.return_boost must be >= 0, got {self.return_boost}")


def satisfaction(clicked_grades: list[int]) -> float:
    """How well a session went: the best grade the user clicked, over 4. Not the click count: under
    the cascade models a good list gets *fewer* clicks (the user stops once satisfied)."""
    return max(clicked_grades, default=0) / 4.0


class Arrivals:
    """Merges base arrivals and scheduled returns in event-time order; `feedback` closes the loop."""

    def __init__(self, ml: MovieLens, config: ArrivalConfig, rng: np.random.Generator,
                 *, returns: bool = True) -> None:
        self.config = config
        self._rng = rng
        self._returns = returns
        self._heap: list[tuple[int, int, int]] = []  # (time_ms, tiebreak, user)
        self._seq = 0
        self.activeness = np.zeros(ml.n_users, dtype=np.float32)
        self._last_time = config.start_ms
        order = np.argsort(ml.rating_ts, kind="stable")
        self._replay_users: npt.NDArray[np.int32] = ml.rating_user[order]
        ts = ml.rating_ts[order]
        rel = (ts - ts[0]).astype(np.float64) * 1000.0 / config.time_compression
        self._replay_ms = np.rint(rel).astype(np.int64)
        self._cycle_ms = int(self._replay_ms[-1]) + 1000
        # the same as Python ints, read once per arrival (a numpy scalar read and int() cost more)
        self._replay_users_list: list[int] = self._replay_users.tolist()
        self._replay_ms_list: list[int] = self._replay_ms.tolist()
        weights = np.bincount(ml.rating_user, minlength=ml.n_users).astype(np.float64)
        self._user_p = weights / weights.sum()
        # rng.choice(n, p=p) is cdf = p.cumsum(); cdf /= cdf[-1]; cdf.searchsorted(rng.random(), side="right")
        # after checking p: the same cdf and draw once per arrival, not the checks and the cumsum each time.
        # (A p rng.choice would refuse, NaN for a MovieLens without ratings, keeps going to rng.choice.)
        cdf = self._user_p.cumsum()
        cdf /= cdf[-1]
        self._user_cdf = cdf if (np.all(np.isfinite(self._user_p)) and np.all(self._user_p >= 0)
                                 and abs(self._user_p.sum() - 1.0) < 1e-8) else None
        self._base_count = 0
        self._base_time = float(config.start_ms)
        self._push_next_base()

    def _push(self, time_ms: int, user: int) -> None:
        heapq.heappush(self._heap, (int(time_ms), self._seq, int(user)))
        self._seq += 1

    def _push_next_base(self) -> None:
        n = self._base_count
        self._base_count += 1
        cfg = self.config
        if cfg.mode == "timestamps":
            cycle, i = divmod(n, len(self._replay_users_list))
            t = cfg.start_ms + cycle * self._cycle_ms + self._replay_ms_list[i]
            self._push(t, self._replay_users_list[i])
        else:
            gap_ms = self._rng.exponential(1000.0 / cfg.rate_per_s)
            self._base_time += gap_ms
            cdf = self._user_cdf
            user = (int(self._rng.choice(self._user_p.size, p=self._user_p)) if cdf is None
                    else int(cdf.searchsorted(self._rng.random(), side="right")))
            self._push(int(self._base_time), user)

    def next(self) -> tuple[int, int, bool]:
        """(event_time_ms, user, is_return) of the next arrival; times never decrease."""
        time_ms, _, user = heapq.heappop(self._heap)
        is_base = user >= 0
        if not is_base:
            user = -user - 1
        else:
            self._push_next_base()
        self._last_time = max(self._last_time, time_ms)
        return self._last_time, user, not is_base

    def feedback(self, user: int, session_end_ms: int, s: float) -> None:
        """Record how the session went (satisfaction s in [0, 1]); maybe schedule the user's return."""
        if not 0 <= s <= 1:
            raise ValueError(f"satisfaction must be in [0, 1], got {s}")
        cfg = self.config
        self.activeness[user] = cfg.activeness_decay * self.activeness[user] + (1 - cfg.activeness_decay) * s
        if not self._returns:
            return
        if self._rng.random() < cfg.return_p0 + (cfg.return_p1 - cfg.return_p0) * s:
            mean_s = cfg.return_gap_s / (1.0 + cfg.return_boost * s)
            gap_ms = max(1, int(self._rng.exponential(mean_s * 1000.0)))
            self._push(session_end_ms + gap_ms, -user - 1)  # negative user id marks a return
