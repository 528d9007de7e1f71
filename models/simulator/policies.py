"""Stand-alone ranking policies with the Ranker.rank signature (operators/ranker.py), so the simulator
runs without a model: random, popular, and an oracle that ranks by the true grade (an upper bound)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from models.candidates import candidate_rows
from models.simulator.world import POPULARITY_COLUMN
from schemas.records import impression_record as build_impression


class RankingPolicy(Protocol):
    def rank(
        self,
        request_id: str,
        user_id: str,
        event_time: int,
        state_features: npt.ArrayLike,
        candidates: Sequence[tuple[str, npt.ArrayLike]],
        k: int,
    ) -> dict[str, Any]: ...


def impression_record(
    *, request_id: str, user_id: str, event_time: int, model_id: str, order: Sequence[int],
    candidates: Sequence[tuple[str, npt.ArrayLike]], state_features: npt.ArrayLike, k: int,
) -> dict[str, Any]:
    """An Impression (schemas/impression.avsc) of the first k candidates of `order`, all CURRENT."""
    shown = list(order[:k])
    ids, actions = candidate_rows(candidates)
    # the shown rows in one fancy index, not k row views; float32 as the schema's features are
    features = np.asarray(actions[shown], dtype=np.float32).tolist()
    slots = zip([ids[j] for j in shown], repeat("CURRENT"), features, repeat(None))
    return build_impression(
        request_id=request_id,
        user_id=user_id,
        event_time=event_time,
        model_id=model_id,
        model_version=0,
        explore_seeds=[],
        slots=slots,
        state_features=np.asarray(state_features, dtype=np.float32).reshape(-1).tolist(),
        interleaving="none",
    )


class RandomPolicy:
    """Uniformly random order; seeded per request so the order does not depend on arrival order."""

    def __init__(self, model_id: str = "random", seed: int = 0) -> None:
        self.model_id = model_id
        self.seed = seed

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        h = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "little")
        key = [self.seed, h & 0xFFFFFFFF, h >> 32]
        # a seed below 2**32 is one entropy word, as each hash half: SeedSequence makes the same words of the
        # uint32 array as of the list, and coerces the array faster (operators/ranker.py's request_rng does so)
        rng = np.random.default_rng(np.array(key, dtype=np.uint32) if 0 <= self.seed <= 0xFFFFFFFF else key)
        order = rng.permutation(len(candidates))
        return impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                 model_id=self.model_id, order=order.tolist(),
                                 candidates=candidates, state_features=state_features, k=k)


class PopularPolicy:
    """Most popular first, by the popularity action feature (column `column` of the action features)."""

    def __init__(self, model_id: str = "popular", column: int = POPULARITY_COLUMN) -> None:
        self.model_id = model_id
        self.column = column

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        pop = candidate_rows(candidates)[1][:, self.column].astype(np.float64)
        order = np.argsort(-pop, kind="stable").tolist()
        return impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                 model_id=self.model_id, order=order, candidates=candidates,
                                 state_features=state_features, k=k)


class OraclePolicy:
    """Ranks by the true grade (ties by candidate order): what a perfect ranker would show."""

    def __init__(self, grades: npt.NDArray[np.int8], user_index: dict[str, int],
                 item_index: dict[str, int], model_id: str = "oracle", drift: Any = None,
                 frozen_at: int | None = None) -> None:
        """`drift` (a NewsDrift): rank by the grades of that moment; `frozen_at`: by those of a fixed
        moment instead (what a model that knew everything then, and learned nothing since, would do)."""
        self.grades = grades
        self.user_index = user_index
        self.item_index = item_index
        self.model_id = model_id
        self.drift = drift
        self.frozen_at = frozen_at

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        u = self.user_index[user_id]
        ids = candidate_rows(candidates)[0]
        idx = np.array([self.item_index[i] for i in ids], dtype=np.int64)
        g = self.grades[u, idx]
        if self.drift is not None:
            g = self.drift.grades(g, idx, event_time if self.frozen_at is None else self.frozen_at)
        order = np.argsort(-g, kind="stable").tolist()
        return impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                 model_id=self.model_id, order=order, candidates=candidates,
                                 state_features=state_features, k=k)


class ExploringPolicy:
    """A logging policy with exploration: `base` ranks, except that a seeded `epsilon` share of requests
    (chosen by a hash of the request id, so independent of arrival order) get a uniformly random order.

    The random share is what lets a model trained offline on the log learn more than the base's order:
    DRN's offline start trains on such a log before it goes online."""

    def __init__(self, base: RankingPolicy, epsilon: float, model_id: str = "logging", seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"ExploringPolicy.epsilon must be in [0, 1], got {epsilon}")
        self.base = base
        self.epsilon = epsilon
        self.model_id = model_id
        self.random = RandomPolicy(model_id, seed=seed)
        self.seed = seed

    def explores(self, request_id: str) -> bool:
        h = int.from_bytes(hashlib.blake2b(f"{self.seed}/{request_id}".encode(), digest_size=8).digest(), "little")
        return h / 2.0**64 < self.epsilon

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        policy = self.random if self.explores(request_id) else self.base
        record = policy.rank(request_id, user_id, event_time, state_features, candidates, k)
        record["model_id"] = self.model_id
        return record
