"""One request's candidates as the ranking policies take them, (item_id, action features) pairs, without
building the pairs: the simulator hands a policy M candidates of which it shows k, and making M tuples of
row views per request was a tenth of a step. `item_ids` and `actions` are what fast paths read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt


class Candidates(Sequence[tuple[str, npt.NDArray[np.float32]]]):
    """(item_ids[j], actions[j]) for j < len(item_ids); read-only by convention (policies never write)."""

    __slots__ = ("actions", "item_ids")

    def __init__(self, item_ids: list[str], actions: npt.NDArray[np.float32]) -> None:
        if len(item_ids) != len(actions):
            raise ValueError(f"Candidates: {len(item_ids)} item ids but {len(actions)} feature rows")
        self.item_ids = item_ids
        self.actions = actions

    def __len__(self) -> int:
        return len(self.item_ids)

    @overload
    def __getitem__(self, j: int) -> tuple[str, npt.NDArray[np.float32]]: ...

    @overload
    def __getitem__(self, j: slice) -> list[tuple[str, npt.NDArray[np.float32]]]: ...

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [(self.item_ids[i], self.actions[i]) for i in range(*j.indices(len(self)))]
        return self.item_ids[j], self.actions[j]

    def __iter__(self) -> Iterator[tuple[str, npt.NDArray[np.float32]]]:
        return zip(self.item_ids, self.actions, strict=True)


def candidate_rows(candidates: Sequence[tuple[str, npt.ArrayLike]]) -> tuple[list[str], npt.NDArray[Any]]:
    """(item ids, actions (M, d) in their own dtype) of any candidate sequence, read-only by convention: a
    Candidates' own list and array (nothing copied), or the pairs' rows stacked (float64 rows stay float64,
    so a policy that reads them as float64 sees the exact values)."""
    if isinstance(candidates, Candidates):
        return candidates.item_ids, candidates.actions
    return [c[0] for c in candidates], np.asarray([c[1] for c in candidates])


def candidate_arrays(candidates: Sequence[tuple[str, npt.ArrayLike]]
                     ) -> tuple[list[str], npt.NDArray[np.float32]]:
    """(item ids, float32 actions (M, d), a fresh array) of any candidate sequence; cheap for Candidates."""
    ids, actions = candidate_rows(candidates)
    return list(ids), np.array(actions, dtype=np.float32)
