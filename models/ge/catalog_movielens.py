"""The generator's categorical inputs for the MovieLens world (models/simulator/world.py action features):
type = the movie's first listed genre, shop = its release decade. A `CategoryMap` for
operators/reranker.py, so the re-ranker's mix and repetition features mean something on MovieLens."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulator.movielens import GENRES

IntArray = npt.NDArray[np.int64]
#: Action-feature column of (year - 1990) / 10 (genres, log count, item bias, year, ...; world.py).
YEAR_COLUMN = len(GENRES) + 2
#: Decades 1920s..1990s and later: ids 0..7 (earlier years join the first, later the last).
FIRST_DECADE, LAST_DECADE = -7, 0


@dataclass(frozen=True)
class MovieLensCategories:
    """shop = release decade (8), type = first genre among the one-hot genre columns (19)."""

    n_shops: int = LAST_DECADE - FIRST_DECADE + 1
    n_types: int = len(GENRES)

    def __call__(self, actions: npt.NDArray[np.float32]) -> tuple[IntArray, IntArray]:
        a = np.asarray(actions, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] <= YEAR_COLUMN:
            raise ValueError(f"MovieLens action features must be (M, > {YEAR_COLUMN}), got {a.shape}")
        decade = np.clip(np.floor(a[:, YEAR_COLUMN]), FIRST_DECADE, LAST_DECADE).astype(np.int64)
        genres = a[:, : len(GENRES)] > 0.5
        # argmax of a boolean row is its first True; a row without genres is "unknown" (the last genre)
        first = np.where(genres.any(axis=1), genres.argmax(axis=1), len(GENRES) - 1).astype(np.int64)
        return decade - FIRST_DECADE, first
