"""MovieLens-100K, read from the recbole wheel: ratings with timestamps, user demographics, item genres."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.simulator.packaged_data import read_member

_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western", "unknown",
)


@dataclass(frozen=True)
class MovieLens:
    """Dense 0-based indices; `user_ids`/`item_ids` keep the original ids for logging."""

    user_ids: list[str]
    item_ids: list[str]
    rating_user: npt.NDArray[np.int32]
    rating_item: npt.NDArray[np.int32]
    rating: npt.NDArray[np.int8]  # 1..5
    rating_ts: npt.NDArray[np.int64]  # unix seconds
    user_age: npt.NDArray[np.float32]
    user_female: npt.NDArray[np.float32]
    item_genres: npt.NDArray[np.float32]  # (n_items, len(GENRES)) multi-hot
    item_year: npt.NDArray[np.float32]  # NaN when unknown

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        return int(self.rating.size)


def _table(archive: Path, suffix: str) -> list[list[str]]:
    text = read_member(archive, f"{_PREFIX}.{suffix}").decode("latin-1")
    rows = [line.split("\t") for line in io.StringIO(text).read().splitlines()[1:] if line.strip()]
    return rows


def parse(archive: Path) -> MovieLens:
    """Parse the three atomic files of the wheel; ids are mapped to dense indices in file order."""
    users = _table(archive, "user")
    items = _table(archive, "item")
    inter = _table(archive, "inter")
    user_index = {row[0]: i for i, row in enumerate(users)}
    item_index = {row[0]: i for i, row in enumerate(items)}
    genres = np.zeros((len(items), len(GENRES)), dtype=np.float32)
    genre_index = {g: j for j, g in enumerate(GENRES)}
    years = np.full(len(items), np.nan, dtype=np.float32)
    for i, row in enumerate(items):
        if len(row) > 2 and row[2].strip().isdigit():
            years[i] = float(row[2])
        for g in (row[3].split() if len(row) > 3 else []):
            # "Children's" / "Film-Noir" / "Sci-Fi" are single tokens in the file.
            genres[i, genre_index.get(g, genre_index["unknown"])] = 1.0
    ru = np.array([user_index[r[0]] for r in inter], dtype=np.int32)
    ri = np.array([item_index[r[1]] for r in inter], dtype=np.int32)
    rating = np.array([float(r[2]) for r in inter], dtype=np.float32).astype(np.int8)
    ts = np.array([float(r[3]) for r in inter], dtype=np.float64).astype(np.int64)
    return MovieLens(
        user_ids=[row[0] for row in users],
        item_ids=[row[0] for row in items],
        rating_user=ru,
        rating_item=ri,
        rating=rating,
        rating_ts=ts,
        user_age=np.array([float(row[1]) for row in users], dtype=np.float32),
        user_female=np.array([1.0 if row[2] == "F" else 0.0 for row in users], dtype=np.float32),
        item_genres=genres,
        item_year=years,
    )

