"""The simulated users and items: MovieLens-100K, true grades for every pair, and the features a ranker sees.

Truth and features come from two different fits on purpose: grades come from an MF on all ratings;
the ranker's embeddings come from a smaller MF on half of them, so its features are informative
but never the truth itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.simulator.completion import MFConfig, MFModel, grades_from, load_or_fit
from models.simulator.movielens import GENRES, MovieLens

F32 = npt.NDArray[np.float32]
FEATURE_RANK = 8
STATE_DIM = FEATURE_RANK + 8
ACTION_DIM = len(GENRES) + FEATURE_RANK + 5
POPULARITY_COLUMN = len(GENRES)  # index of the popularity action feature
YEAR_COLUMN = len(GENRES) + 2  # the item's year; its age in a drifting world (models/simulator/drift.py)


@dataclass(frozen=True)
class WorldConfig:
    """How truth is completed and how the ranker's features are built."""

    seed: int = 0
    truth_mf: MFConfig | None = None
    feature_mf: MFConfig | None = None
    unrated_shift: float = 1.0
    n_candidates: int = 100
    popular_share: float = 0.5

    def __post_init__(self) -> None:
        if self.truth_mf is None:
            object.__setattr__(self, "truth_mf", MFConfig(rank=8, reg=10.0, seed=self.seed))
        if self.feature_mf is None:
            fm = MFConfig(rank=FEATURE_RANK, reg=10.0, seed=self.seed + 1, sample_fraction=0.5)
            object.__setattr__(self, "feature_mf", fm)
        if self.feature_mf is not None and self.feature_mf.rank != FEATURE_RANK:
            raise ValueError(f"WorldConfig.feature_mf.rank must be {FEATURE_RANK} (it sets the feature dims)")
        if not np.isfinite(self.unrated_shift):
            raise ValueError(f"WorldConfig.unrated_shift must be finite, got {self.unrated_shift}")
        if self.n_candidates < 1:
            raise ValueError(f"WorldConfig.n_candidates must be >= 1, got {self.n_candidates}")
        if not 0 <= self.popular_share <= 1:
            raise ValueError(f"WorldConfig.popular_share must be in [0, 1], got {self.popular_share}")


@dataclass
class World:
    """Static part of the simulation: who exists, how relevant each item is to each user, features."""

    ml: MovieLens
    grades: npt.NDArray[np.int8]  # (n_users, n_items) 0..4
    feature_model: MFModel
    config: WorldConfig
    item_index: dict[str, int] = field(init=False)

    state_dim = STATE_DIM
    action_dim = ACTION_DIM

    def __post_init__(self) -> None:
        self.item_index = {item: i for i, item in enumerate(self.ml.item_ids)}
        if self.config.n_candidates > self.ml.n_items:
            raise ValueError(
                f"WorldConfig.n_candidates={self.config.n_candidates} exceeds the {self.ml.n_items} items"
            )

    @classmethod
    def build(cls, config: WorldConfig | None, ml: MovieLens, *, mf_cache: Path | None = None) -> World:
        """The world over `ml`; its fitted MFs are cached in the folder `mf_cache` (None: always fit)."""
        config = config or WorldConfig()
        assert config.truth_mf is not None and config.feature_mf is not None
        truth = load_or_fit(ml, config.truth_mf, cache=mf_cache)
        feats = load_or_fit(ml, config.feature_mf, cache=mf_cache)
        return cls(ml, grades_from(ml, truth, config.unrated_shift), feats, config)

    # --- static per-user / per-item parts ------------------------------------------------------
    @cached_property
    def popularity(self) -> F32:
        """Share of ratings per item (real popularity)."""
        counts = np.bincount(self.ml.rating_item, minlength=self.ml.n_items).astype(np.float64)
        return (counts / counts.sum()).astype(np.float32)

    @cached_property
    def _user_static(self) -> F32:
        ml, fm = self.ml, self.feature_model
        n_rated = np.bincount(ml.rating_user, minlength=ml.n_users).astype(np.float32)
        return np.hstack([
            fm.user_vec,
            fm.user_bias[:, None],
            ((ml.user_age - 30.0) / 15.0)[:, None],
            ml.user_female[:, None],
            (np.log1p(n_rated) / 5.0)[:, None],
        ]).astype(np.float32)

    @cached_property
    def _item_static(self) -> F32:
        ml, fm = self.ml, self.feature_model
        counts = np.bincount(ml.rating_item, minlength=ml.n_items).astype(np.float32)
        year = np.nan_to_num((ml.item_year - 1990.0) / 10.0, nan=0.0)
        return np.hstack([
            ml.item_genres,
            (np.log1p(counts) / np.log1p(counts.max()))[:, None],
            fm.item_bias[:, None],
            year[:, None],
            fm.item_vec,
        ]).astype(np.float32)

    # --- per request ---------------------------------------------------------------------------
    def candidates(self, rng: np.random.Generator,
                   allowed: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.int64]:
        """M distinct item indices: `popular_share` drawn by real popularity, the rest uniformly; only
        `allowed` items when given (a drifting world's live items; it must allow at least M)."""
        m = self.config.n_candidates
        n_pop = round(m * self.config.popular_share)
        n_items = self.ml.n_items
        chosen = np.empty(0, dtype=np.int64)
        if n_pop:
            # Gumbel top-k = sampling without replacement ∝ popularity, vectorised (rng.choice with
            # p and replace=False was the simulator's bottleneck). The negated keys, -(log p + G), are
            # (-log p) - G in one ufunc into the draws' own array: the same order (negation is exact).
            neg_keys = rng.gumbel(size=n_items)
            np.subtract(self._neg_log_popularity, neg_keys, out=neg_keys)
            if allowed is not None:
                neg_keys = np.where(allowed, neg_keys, np.inf)
            chosen = np.argpartition(neg_keys, n_pop - 1)[:n_pop]
        if m > n_pop:
            keys = rng.random(n_items)
            if allowed is not None:
                keys = np.where(allowed, keys, 3.0)
            keys[chosen] = 2.0  # never picked twice
            rest = np.argpartition(keys, m - n_pop - 1)[: m - n_pop]
            chosen = np.concatenate([chosen, rest])
        return chosen.astype(np.int64, copy=False)

    @cached_property
    def _log_popularity(self) -> npt.NDArray[np.float64]:
        with np.errstate(divide="ignore"):
            return np.log(self.popularity.astype(np.float64))

    @cached_property
    def _neg_log_popularity(self) -> npt.NDArray[np.float64]:
        return -self._log_popularity

    @cached_property
    def _action_block(self) -> F32:
        """Every item's action row with the two per-user columns (dot, pred) left 0: a request's actions are
        one gather of it and two column writes."""
        static = self._item_static
        block = np.zeros((static.shape[0], ACTION_DIM), dtype=np.float32)
        block[:, : static.shape[1]] = static
        return block

    def _hour_features(self, second_of_day: int) -> tuple[float, float]:
        """(sin, cos) of the hour-of-day angle, as features computes them (cached per second of the day)."""
        cache = self.__dict__.setdefault("_hour_cache", {})
        got = cache.get(second_of_day)
        if got is None:
            angle = 2 * np.pi * (second_of_day / 3600.0) / 24.0
            got = cache[second_of_day] = (np.sin(angle), np.cos(angle))
        return got

    def features(
        self, user: int, candidates: npt.ArrayLike, *, event_time: int = 0, activeness: float = 0.0,
        item_age: npt.ArrayLike | None = None,
    ) -> tuple[F32, F32]:
        """(state (state_dim,), actions (len(candidates), action_dim)) as the ranker logs them.

        State: feature-MF user vector and bias, age, gender, log #ratings, activeness, hour of day
        (sin, cos), 1. Action: genres, popularity, item bias, year, feature-MF item vector,
        user·item dot, the feature MF's predicted rating (centred).
        """
        cand = np.asarray(candidates, dtype=np.int64)
        user_static = self._user_static[user]
        state = np.empty(user_static.size + 4, dtype=np.float32)
        state[: user_static.size] = user_static
        state[user_static.size:] = (activeness, *self._hour_features(event_time // 1000 % 86400), 1.0)
        fm = self.feature_model
        dot = fm.item_vec[cand] @ fm.user_vec[user]
        pred = fm.mu + fm.user_bias[user] + fm.item_bias[cand] + dot - 3.5
        actions = self._action_block[cand]
        actions[:, -2] = dot
        actions[:, -1] = pred
        if item_age is not None:  # a drifting world: the item's age (share of its lifetime) replaces its year
            actions[:, YEAR_COLUMN] = np.asarray(item_age, dtype=np.float32)
        return state, actions

    def grade(self, user: int, item_id: str) -> int:
        return int(self.grades[user, self.item_index[item_id]])
