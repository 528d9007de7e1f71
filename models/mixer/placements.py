"""The action space: every placement of 0..max_ads ads on a page of `slots` slots.

A placement is the sorted tuple of 0-based ad positions; two ads are at least `min_gap` slots apart.
The best ad of the auction (highest predicted eCPM) takes the first position, the second the next.
Organic items fill the other slots in their ranking order, so an ad shifts every organic item below
it down one slot and pushes the last organic item off the page.

`organic_exposure[a, r]` is the slot of the r-th ranked organic item under placement a as its
examination weight (0 when it is pushed off); `ad_exposure[a, k]` the same for the k-th ad. With
per-item values v (organic) and w (ads), the page's expected engagement is organic_exposure @ v and its
revenue ad_exposure @ w, for all placements at once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Placements:
    slots: int = 10
    max_ads: int = 2
    min_gap: int = 2
    placements: tuple[tuple[int, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.slots < 2:
            raise ValueError(f"slots must be >= 2, got {self.slots}")
        if not 0 <= self.max_ads < self.slots:
            raise ValueError(f"max_ads must be in [0, {self.slots - 1}], got {self.max_ads}")
        if self.min_gap < 1:
            raise ValueError(f"min_gap must be >= 1, got {self.min_gap}")
        out: list[tuple[int, ...]] = []
        for n in range(self.max_ads + 1):
            for combo in itertools.combinations(range(self.slots), n):
                if all(b - a >= self.min_gap for a, b in itertools.pairwise(combo)):
                    out.append(combo)
        object.__setattr__(self, "placements", tuple(out))

    def __len__(self) -> int:
        return len(self.placements)

    def index(self, positions: tuple[int, ...]) -> int:
        return self.placements.index(tuple(sorted(positions)))

    @property
    def n_ads(self) -> npt.NDArray[np.int64]:
        return np.array([len(p) for p in self.placements], dtype=np.int64)

    def ad_positions(self) -> npt.NDArray[np.int64]:
        """(A, max_ads) the slot of each ad, -1 where absent."""
        out = np.full((len(self), self.max_ads), -1, dtype=np.int64)
        for a, p in enumerate(self.placements):
            out[a, : len(p)] = p
        return out

    def organic_positions(self) -> npt.NDArray[np.int64]:
        """(A, slots) the slot of the r-th organic item, -1 when pushed off the page."""
        out = np.full((len(self), self.slots), -1, dtype=np.int64)
        for a, p in enumerate(self.placements):
            free = [s for s in range(self.slots) if s not in p]
            out[a, : len(free)] = free
        return out

    def exposures(self, examination: F64) -> tuple[F64, F64]:
        """(organic_exposure (A, slots), ad_exposure (A, max_ads)) for per-slot examination weights."""
        if examination.shape != (self.slots,):
            raise ValueError(f"examination must have shape ({self.slots},), got {examination.shape}")
        ext = np.append(examination, 0.0)  # index -1 -> weight 0
        return ext[self.organic_positions()], ext[self.ad_positions()]
