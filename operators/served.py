"""The served ModelWeights version of a serving operator (DRN ranker, GE re-ranker) and its explore
perturbations, in one place so both swap versions and rotate explore seeds by the same rules.

The served version is swapped atomically (one attribute assignment), so `apply_record` may run on the
WeightsFollower thread while requests are served; the explorers W~ = W + ΔW(seed; W) are built once per
(served version, round) under a lock and cached. What a served version or an explorer *is* (a scorer, a
generator module and its decoder) is up to the owner, through the two factories.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from models.interleave import Method
from models.perturbation import ExploreParams, Perturbation, explore_weights
from models.probation import ProbationParams, is_probation_round, probation_seed
from models.weights import (
    FlatWeights,
    Layout,
    ParamSpec,
    check_flat,
    checksum,
    parse_model_weights_record,
    to_bytes,
)


def explore_seeds_for(base_seed: int, model_version: int, round_idx: int, n: int) -> list[int]:
    """The n explore seeds of (model_version, round): deterministic, 63-bit non-negative."""
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(model_version), int(round_idx)))
    return [int(s >> np.uint64(1)) for s in ss.generate_state(n, dtype=np.uint64)]


class ServedVersion(Protocol):
    """What the cache needs from a served version: its identity and flat weights."""

    @property
    def version(self) -> int: ...

    @property
    def checksum(self) -> str: ...

    @property
    def flat(self) -> FlatWeights: ...

    @property
    def layout(self) -> Layout: ...


class ExploreConfig(Protocol):
    """The exploration settings read from the owner's config (RankerConfig, RerankerConfig)."""

    @property
    def base_seed(self) -> int: ...

    @property
    def n_explore(self) -> int: ...

    @property
    def alpha(self) -> float: ...

    @property
    def perturbation(self) -> Perturbation: ...


def check_explore_settings(config: Any, name: str) -> None:
    """Normalise and validate the serving settings the DRN ranker and the GE re-ranker share (their
    frozen configs call this from __post_init__); `name` is the config's class name in errors."""
    object.__setattr__(config, "perturbation", Perturbation(config.perturbation))
    object.__setattr__(config, "interleaving", Method(config.interleaving))
    if not config.model_id:
        raise ValueError(f"{name}.model_id must be a non-empty string")
    if not np.isfinite(config.alpha) or config.alpha < 0:
        raise ValueError(f"{name}.alpha must be a finite number >= 0, got {config.alpha}")
    if config.n_explore < 1:
        raise ValueError(f"{name}.n_explore must be >= 1, got {config.n_explore}")
    if config.n_explore > 1 and config.interleaving not in (Method.TEAM_DRAFT, Method.MULTILEAVE):
        raise ValueError(
            f"{name}.interleaving={config.interleaving.value} cannot take n_explore={config.n_explore} "
            "lists; several explore seeds use team-draft multileaving (interleaving='team_draft')"
        )
    if config.n_explore == 1 and config.interleaving is Method.MULTILEAVE:
        object.__setattr__(config, "interleaving", Method.TEAM_DRAFT)
    if config.base_seed < 0:
        raise ValueError(f"{name}.base_seed must be >= 0, got {config.base_seed}")
    if config.round_ms < 1:
        raise ValueError(f"{name}.round_ms must be >= 1, got {config.round_ms}")
    if not np.isfinite(config.tau) or config.tau < 0:
        raise ValueError(f"{name}.tau must be a finite number >= 0, got {config.tau}")


def serving_method(config: Any) -> Method:
    """The interleaving actually run: multileave when several explore seeds, else `interleaving`."""
    return Method.MULTILEAVE if config.n_explore > 1 else Method(config.interleaving)


S = TypeVar("S", bound=ServedVersion)
E = TypeVar("E")

#: (version, flat W, layout, checksum) -> the served object.
BuildServed = Callable[[int, FlatWeights, Layout, str], S]
#: (served, explore seed, flat W~) -> one explorer.
BuildExplorer = Callable[[S, int, FlatWeights], E]


class ServedWeights(Generic[S, E]):
    """The served version S and the per-(version, round) cache of its explorers E."""

    def __init__(self, build_served: BuildServed[S], build_explorer: BuildExplorer[S, E]) -> None:
        self._build_served = build_served
        self._build_explorer = build_explorer
        self._served: S | None = None
        #: The explore parameters the served version's record carries (None: the owner's config decides).
        self._served_explore: tuple[S, ExploreParams | None] | None = None
        self._explore: tuple[S, int, list[E]] | None = None
        #: (served, its probation, the parent served before it, the first round it was served in).
        self._probation: tuple[S, ProbationParams, S, int | None] | None = None
        self._lock = threading.Lock()

    @property
    def served(self) -> S | None:
        return self._served

    @property
    def version(self) -> int | None:
        served = self._served
        return None if served is None else served.version

    def apply_record(
        self,
        record: Mapping[str, Any],
        model_id: str,
        owner: str,
        check: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> bool:
        """Serve a decoded ModelWeights record of `model_id` (any kind). The model_id, then `check`, then
        the record are validated first (an error changes nothing); False when it is the version already
        served. `owner` names the operator in the model_id error ("ranker", "re-ranker")."""
        if record.get("model_id") != model_id:
            raise ValueError(
                f"ModelWeights.model_id={record.get('model_id')!r} is not this {owner}'s {model_id!r}"
            )
        if check is not None:
            check(record)
        flat, layout = parse_model_weights_record(record)
        current = self._served
        if (
            current is not None
            and current.version == record["version"]
            and current.checksum == record["checksum"]
        ):
            return False
        architecture = str(record.get("architecture") or "")
        explore = ExploreParams.read_from(architecture)
        served = self._build_served(int(record["version"]), flat, layout, str(record["checksum"]))
        # A MAJOR on probation is interleaved against the version served before it (its parent) if held.
        params = ProbationParams.read_from(architecture) if record.get("kind") == "MAJOR" else None
        self._probation = None
        if (params is not None and current is not None and current.version == record.get("parent_version")
                and current.layout == layout):
            self._probation = (served, params, current, None)
        self._served_explore = (served, explore)
        self._served = served
        return True

    def set(self, flat: npt.ArrayLike, layout: Sequence[ParamSpec], version: int) -> None:
        """Serve weights without a record (tests, bootstrap)."""
        arr = check_flat(flat, layout)
        self._served = self._build_served(int(version), arr, list(layout), checksum(to_bytes(arr)))

    def explore_params(self, served: S, config: ExploreConfig) -> ExploreParams:
        """α and ΔW kind for `served`: those its record carries, else the owner's config (older records)."""
        held = self._served_explore
        if held is not None and held[0] is served and held[1] is not None:
            return held[1]
        return ExploreParams(config.alpha, config.perturbation)

    def explorers(self, served: S, rnd: int, config: ExploreConfig) -> list[E]:
        """The explorers of `served` for round `rnd`, one per explore seed; built once, then cached."""
        cached = self._explore
        if cached is not None and cached[0] is served and cached[1] == rnd:
            return cached[2]
        with self._lock:  # one builder at a time; a racing thread may have built it meanwhile
            cached = self._explore
            if cached is not None and cached[0] is served and cached[1] == rnd:
                return cached[2]
            parent = self._probation_parent(served, rnd)
            if parent is not None:  # on probation: the parent is the one explore team (models/probation.py)
                built = [self._build_explorer(served, probation_seed(served.version, parent.version), parent.flat)]
            else:
                seeds = explore_seeds_for(config.base_seed, served.version, rnd, config.n_explore)
                params = self.explore_params(served, config)
                built = [
                    self._build_explorer(served, s, explore_weights(served.flat, s, params.alpha, params.perturbation))
                    for s in seeds
                ]
            self._explore = (served, rnd, built)
        return built

    def _probation_parent(self, served: S, rnd: int) -> S | None:
        """The parent `served` is interleaved against in round `rnd` (its first `windows` rounds), else None."""
        held = self._probation
        if held is None or held[0] is not served:
            return None
        _, params, parent, first = held
        if first is None:
            first = rnd
            self._probation = (served, params, parent, first)
        return parent if is_probation_round(rnd, first, params) else None
