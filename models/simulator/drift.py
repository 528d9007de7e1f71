"""A world that changes, as news does (`--drift news`): items are published, age and expire, new ones keep
coming, and the popularity of each genre (topic) moves as a slow random walk.

Why: DRN's online updates exist to follow such a world. In the static world a model frozen at the start
stays as good as it was; here it does not, so there is something for online learning to follow.

Everything is a pure function of (seed, config, start time) and the event time asked about, so a run is
reproducible and any component (simulator, oracle, evaluation) sees the same world at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulator.movielens import MovieLens

_HOUR_MS = 3_600_000
DRIFT_KINDS = ("none", "news")


@dataclass(frozen=True)
class DriftConfig:
    """`kind` none keeps the static world. The times are event time (a default simulate run of 100k
    impressions spans about 4 h of it)."""

    kind: str = "none"
    seed: int = 0
    #: Items publish uniformly over [start - lifetime, start + publish_span] and are candidates for
    #: `lifetime` after publishing.
    lifetime_h: float = 2.0
    publish_span_h: float = 8.0
    #: An item's appeal halves every `half_life_h` of age.
    half_life_h: float = 1.0
    #: Log-popularity of each genre moves by N(0, sigma²) per `step_min` minutes.
    genre_sigma: float = 0.25
    step_min: float = 10.0
    #: The world's time zero (publish times and the walk start here); None: the run's first arrival. Runs that
    #: continue one world (a logging period, then the online run, then an evaluation) share one.
    start_ms: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"DriftConfig.kind must be one of {', '.join(DRIFT_KINDS)}, got {self.kind!r}")
        for name in ("lifetime_h", "publish_span_h", "half_life_h", "step_min"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DriftConfig.{name} must be > 0, got {getattr(self, name)}")
        if not self.genre_sigma >= 0:
            raise ValueError(f"DriftConfig.genre_sigma must be >= 0, got {self.genre_sigma}")


class NewsDrift:
    """Publish times, ages, the genre walk and the drifted grades of one run."""

    def __init__(self, ml: MovieLens, config: DriftConfig, start_ms: int) -> None:
        if config.kind != "news":
            raise ValueError("NewsDrift needs DriftConfig(kind='news')")
        self.config = config
        self.start_ms = start_ms
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x6E657773]))
        life = config.lifetime_h * _HOUR_MS
        self.lifetime_ms = int(life)
        self.publish_ms = (start_ms + rng.uniform(-life, config.publish_span_h * _HOUR_MS, size=ml.n_items)
                           ).astype(np.int64)
        genres = ml.item_genres.astype(np.float64)
        self._item_genres = genres / np.maximum(genres.sum(axis=1, keepdims=True), 1.0)
        self._step_ms = int(config.step_min * 60_000)
        n_steps = int((config.publish_span_h + 2 * config.lifetime_h) * _HOUR_MS // self._step_ms) + 2
        walk = np.cumsum(rng.normal(0.0, config.genre_sigma, size=(n_steps, genres.shape[1])), axis=0)
        self._genre_walk = walk - walk.mean(axis=1, keepdims=True)  # relative popularity, mean 0 per step

    def alive(self, event_time: int) -> npt.NDArray[np.bool_]:
        """Items that can be recommended at `event_time` (published, not yet expired)."""
        age = event_time - self.publish_ms
        return (age >= 0) & (age < self.lifetime_ms)

    def live(self, event_time: int, n_candidates: int) -> npt.NDArray[np.bool_]:
        """The items a drifting world can recommend now; the freshest published ones when fewer than
        `n_candidates` are alive (the end of a run longer than the publish span)."""
        live = self.alive(event_time)
        if int(live.sum()) >= n_candidates:
            return live
        published = np.where(self.publish_ms <= event_time, self.publish_ms, np.iinfo(np.int64).min)
        live = np.zeros_like(live)
        live[np.argpartition(-published, n_candidates - 1)[:n_candidates]] = True
        return live

    def age_fraction(self, items: npt.ArrayLike, event_time: int) -> npt.NDArray[np.float32]:
        """Age of each item as a share of its lifetime (0 fresh .. 1 expiring; clipped)."""
        age = event_time - self.publish_ms[np.asarray(items, dtype=np.int64)]
        return np.clip(age / self.lifetime_ms, 0.0, 1.0).astype(np.float32)

    def appeal(self, items: npt.ArrayLike, event_time: int) -> npt.NDArray[np.float64]:
        """Multiplier of each item's true grade at `event_time`: freshness decay times genre popularity."""
        idx = np.asarray(items, dtype=np.int64)
        age_h = np.maximum(event_time - self.publish_ms[idx], 0) / _HOUR_MS
        decay = 0.5 ** (age_h / self.config.half_life_h)
        step = int(np.clip((event_time - self.start_ms) // self._step_ms, 0, len(self._genre_walk) - 1))
        topic = np.exp(self._item_genres[idx] @ self._genre_walk[step])
        return np.asarray(np.clip(decay * topic, 0.0, 1.5), dtype=np.float64)

    def grades(self, base: npt.ArrayLike, items: npt.ArrayLike, event_time: int) -> npt.NDArray[np.int8]:
        """Drifted grades 0..4 of `items` (base: their static grades for one user)."""
        g = np.asarray(base, dtype=np.float64) * self.appeal(items, event_time)
        return np.clip(np.rint(g), 0, 4).astype(np.int8)
