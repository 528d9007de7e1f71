"""The DRN ranker: scores candidates with W and W~ = W + ΔW(seed), interleaves the lists and returns
the Impression record (schemas/impression.avsc) with the features it used.

Determinism (so a replay or a second ranker gives the same impressions):
- explore seeds rotate per *round*, round = event_time // round_ms (default 30 min, DRN's window);
  the n explore seeds of a round are `SeedSequence(base_seed, spawn_key=(model_version, round))
  .generate_state(n, uint64) >> 1` (63-bit, fits Avro long): a new version or a new round gives
  new seeds, the same (version, round) always the same seeds;
- the interleaving coin flips of a request come from
  `default_rng([base_seed, blake2b-64(request_id) split in two 32-bit words, round])`, so they do not
  depend on the order requests arrive in.
State: the served version (flat W, layout, scorer) is swapped atomically by `apply_weights`, which
may run on the WeightsFollower thread; explore scorers are cached per (version, round).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from models.candidates import candidate_arrays
from models.drn import DrnScorer, DrnStack
from models.interleave import Method, Pick, interleave
from models.perturbation import ExploreParams, Perturbation
from models.weights import FlatWeights, Layout, ParamSpec
from operators.served import ServedWeights, check_explore_settings, serving_method
from operators.served import explore_seeds_for as explore_seeds_for  # re-exported: its public home
from schemas.records import impression_record

DEFAULT_ROUND_MS = 30 * 60 * 1000


class Scorer(Protocol):
    """What the ranker needs from a network: Q for one state's candidate set."""

    @property
    def state_dim(self) -> int: ...

    @property
    def action_dim(self) -> int: ...

    def q(self, state: npt.ArrayLike, actions: npt.ArrayLike) -> npt.NDArray[np.float32]: ...


ScorerFactory = Callable[[FlatWeights, Sequence[ParamSpec]], Scorer]


class RankerNotReady(RuntimeError):
    """rank() was called before any ModelWeights version was applied."""


@dataclass(frozen=True)
class RankerConfig:
    """How the ranker explores and interleaves."""

    model_id: str = "drn"
    alpha: float = 0.1
    perturbation: Perturbation = Perturbation.MULTIPLICATIVE
    interleaving: Method = Method.TEAM_DRAFT
    n_explore: int = 1
    base_seed: int = 0
    round_ms: int = DEFAULT_ROUND_MS
    tau: float = 3.0

    def __post_init__(self) -> None:
        check_explore_settings(self, "RankerConfig")

    @property
    def method(self) -> Method:
        """The interleaving actually run: multileave when several explore seeds, else `interleaving`."""
        return serving_method(self)


def round_index(event_time: int, round_ms: int) -> int:
    """The exploration round of an event time (millis)."""
    if event_time < 0:
        raise ValueError(f"event_time must be >= 0 millis, got {event_time}")
    return int(event_time) // int(round_ms)


def request_rng(base_seed: int, request_id: str, round_idx: int) -> np.random.Generator:
    """The interleaving generator of one request (stable across processes, unlike hash())."""
    h = int.from_bytes(hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest(), "little")
    key = [int(base_seed), h & 0xFFFFFFFF, h >> 32, int(round_idx)]
    if 0 <= key[0] <= _U32_MAX and 0 <= key[3] <= _U32_MAX:
        # the same entropy words SeedSequence makes of the list (one per int below 2**32), ~4 µs faster
        return np.random.default_rng(np.array(key, dtype=np.uint32))
    return np.random.default_rng(key)


_U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True)
class ServedModel:
    """One applied ModelWeights version: what the ranker scores with."""

    model_id: str
    version: int
    flat: FlatWeights
    layout: Layout
    checksum: str
    scorer: Scorer


class Ranker:
    """Ranks a candidate set with the served version and its explore perturbations."""

    def __init__(self, config: RankerConfig, scorer_factory: ScorerFactory = DrnScorer) -> None:
        self.config = config
        self._scorer_factory = scorer_factory
        self._weights: ServedWeights[ServedModel, tuple[int, Scorer]] = ServedWeights(
            self._build_served, self._build_explorer
        )
        #: (served, its explorers list of the round, their DrnStack): rebuilt when either changes.
        self._stack: tuple[ServedModel, list[tuple[int, Scorer]], DrnStack] | None = None

    # --- weights -------------------------------------------------------------------------------
    @property
    def served(self) -> ServedModel | None:
        return self._weights.served

    @property
    def version(self) -> int | None:
        return self._weights.version

    def explore_params(self, served: ServedModel) -> ExploreParams:
        """α and ΔW kind `served` is explored with: its record's, else this config's."""
        return self._weights.explore_params(served, self.config)

    def apply_weights(self, record: Mapping[str, Any]) -> bool:
        """Serve a decoded ModelWeights record (any kind). Validates it first (WeightsError on a bad
        one, and the old version stays); returns False when it is the version already served."""
        return self._weights.apply_record(record, self.config.model_id, "ranker")

    def set_weights(self, flat: npt.ArrayLike, layout: Sequence[ParamSpec], version: int) -> None:
        """Serve weights without a record (tests, simulator bootstrap)."""
        self._weights.set(flat, layout, version)

    def _build_served(self, version: int, flat: FlatWeights, layout: Layout, checksum: str) -> ServedModel:
        scorer = self._scorer_factory(flat, layout)
        return ServedModel(self.config.model_id, version, flat, layout, checksum, scorer)

    def _build_explorer(self, served: ServedModel, seed: int, flat: FlatWeights) -> tuple[int, Scorer]:
        return seed, self._scorer_factory(flat, served.layout)

    def explore_scorers(self, event_time: int) -> list[tuple[int, Scorer]]:
        """(seed, scorer of W~ = W + ΔW(seed; W)) for the round of `event_time`; cached per (version, round)
        and the very scorers rank() uses."""
        served = self._require()
        return self._weights.explorers(served, round_index(event_time, self.config.round_ms), self.config)

    def _require(self) -> ServedModel:
        served = self._weights.served
        if served is None:
            raise RankerNotReady(f"ranker for model {self.config.model_id!r} has no weights yet")
        return served

    def _checked_request(self, request_id: str, state_features: npt.ArrayLike,
                         candidates: Sequence[tuple[str, npt.ArrayLike]], k: int
                         ) -> tuple[ServedModel, npt.NDArray[np.float32], list[str], npt.NDArray[np.float32]]:
        """The served version and one request's state, item ids and action features as arrays, or ValueError
        naming what is wrong with the request (every ranking policy of this ranker checks the same)."""
        served = self._require()
        state = np.asarray(state_features, dtype=np.float32).reshape(-1)
        if state.size != served.scorer.state_dim:
            raise ValueError(
                f"request {request_id}: state_features has {state.size} values, "
                f"model expects {served.scorer.state_dim}"
            )
        if k < 1:
            raise ValueError(f"request {request_id}: k must be >= 1, got {k}")
        item_ids, actions = candidate_arrays(candidates)
        if len(set(item_ids)) != len(item_ids):
            raise ValueError(f"request {request_id}: candidates repeat an item_id")
        if actions.size == 0:
            actions = actions.reshape(0, served.scorer.action_dim)
        if actions.ndim != 2 or actions.shape[1] != served.scorer.action_dim:
            raise ValueError(
                f"request {request_id}: action features must be {served.scorer.action_dim} values "
                f"per candidate, got shape {actions.shape}"
            )
        return served, state, item_ids, actions

    def _scores(self, served: ServedModel, explorers: list[tuple[int, Scorer]], state: npt.NDArray[np.float32],
                actions: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Q of W, then of each W~, for one request: numpy DRN scorers are run as one DrnStack (one batched
        matmul per layer, same bits as one q() each), other scorers one by one."""
        held = self._stack
        if held is None or held[0] is not served or held[1] is not explorers:
            scorers = [served.scorer, *(scorer for _, scorer in explorers)]
            if not all(isinstance(s, DrnScorer) for s in scorers):
                return [s.q(state, actions) for s in scorers]
            held = (served, explorers, DrnStack([s for s in scorers if isinstance(s, DrnScorer)]))
            self._stack = held
        return held[2].q_all(state, actions)

    # --- ranking -------------------------------------------------------------------------------
    def rank(
        self,
        request_id: str,
        user_id: str,
        event_time: int,
        state_features: npt.ArrayLike,
        candidates: Sequence[tuple[str, npt.ArrayLike]],
        k: int,
    ) -> dict[str, Any]:
        """Rank `candidates` (item_id, action features) for one request; returns the Impression record."""
        served, state, item_ids, actions = self._checked_request(request_id, state_features, candidates, k)
        cfg = self.config
        rnd = round_index(event_time, cfg.round_ms)
        explorers = self._weights.explorers(served, rnd, cfg)
        lists = [_ranking(q) for q in self._scores(served, explorers, state, actions)]
        picks: list[Pick[int]] = interleave(
            cfg.method, lists, k, request_rng(cfg.base_seed, request_id, rnd), cfg.tau
        )
        seeds = [s for s, _ in explorers]
        return impression_record(
            request_id=request_id,
            user_id=user_id,
            event_time=event_time,
            model_id=cfg.model_id,
            model_version=served.version,
            explore_seeds=seeds,
            slots=(
                (item_ids[p.item], p.team.value, actions[p.item].tolist(),
                 None if p.source == 0 else seeds[p.source - 1])
                for p in picks
            ),
            state_features=state.tolist(),
            interleaving=cfg.method.value,
        )


def _ranking(q: npt.NDArray[np.float32]) -> list[int]:
    """Candidate indices best first; ties keep candidate order (stable), so rankings are reproducible."""
    ranking: list[int] = np.argsort(-q, kind="stable").tolist()
    return ranking
