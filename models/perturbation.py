"""ΔW(seed; W): the one exploration perturbation shared by the ranker and the learner (design.md §5).

Both sides must compute the same direction from the same seed, byte for byte, so the recipe is
fixed and documented here:

- the generator is numpy's PCG64 seeded with the explore seed (`np.random.default_rng(seed)`);
- `u = rng.uniform(-1.0, 1.0, size=W.size)` in float64, in the flat parameter order of the
  ModelWeights layout;
- multiplicative (DRN, default): ΔW = α · u · W, computed in float64, cast to float32;
- unit_sphere (Yue & Joachims): d = u' / ||u'|| with u' = rng.standard_normal(W.size), ΔW = α · d
  (the direction does not depend on W).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.architecture import read_entry, with_entry

FloatArray = npt.NDArray[np.float32]


class Perturbation(enum.StrEnum):
    MULTIPLICATIVE = "multiplicative"
    UNIT_SPHERE = "unit_sphere"


def explore_delta(
    weights: npt.NDArray[np.floating],
    seed: int,
    alpha: float,
    kind: Perturbation | str = Perturbation.MULTIPLICATIVE,
) -> FloatArray:
    """The explore direction ΔW for `seed`, shaped like the flat float32 `weights`."""
    if alpha < 0 or not np.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    flat = np.asarray(weights, dtype=np.float32).reshape(-1)
    rng = np.random.default_rng(int(seed))
    kind = Perturbation(kind)
    if kind is Perturbation.MULTIPLICATIVE:
        u = rng.uniform(-1.0, 1.0, size=flat.size)
        delta = alpha * u * flat.astype(np.float64)
    else:
        g = rng.standard_normal(size=flat.size)
        norm = float(np.linalg.norm(g))
        delta = alpha * g / (norm if norm > 0 else 1.0)
    return delta.astype(np.float32)


def explore_weights(
    weights: npt.NDArray[np.floating],
    seed: int,
    alpha: float,
    kind: Perturbation | str = Perturbation.MULTIPLICATIVE,
) -> FloatArray:
    """W~ = W + ΔW(seed; W): the explore network's weights."""
    flat = np.asarray(weights, dtype=np.float32).reshape(-1)
    return (flat + explore_delta(flat, seed, alpha, kind)).astype(np.float32)


#: Key of the explore parameters inside a ModelWeights record's `architecture` JSON.
EXPLORE_KEY = "explore"


@dataclass(frozen=True)
class ExploreParams:
    """α and the ΔW kind: what a ranker and a learner must share to rebuild one explore network from a
    seed. They travel inside each ModelWeights record's `architecture` (design.md §3), so both sides
    read them from the version they serve or rebase on."""

    alpha: float
    perturbation: Perturbation = Perturbation.MULTIPLICATIVE

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"explore alpha must be a finite number >= 0, got {self.alpha!r}")
        try:
            object.__setattr__(self, "perturbation", Perturbation(self.perturbation))
        except ValueError:
            allowed = ", ".join(p.value for p in Perturbation)
            raise ValueError(f"explore perturbation must be one of {allowed}, got {self.perturbation!r}") from None
        object.__setattr__(self, "alpha", float(self.alpha))

    def describe(self) -> str:
        return f"alpha {self.alpha:g}, {self.perturbation.value}"

    def written_into(self, architecture: str) -> str:
        """`architecture` (a JSON object, or "") with these parameters under EXPLORE_KEY."""
        return with_entry(architecture, EXPLORE_KEY, {"alpha": self.alpha, "perturbation": self.perturbation.value})

    @classmethod
    def read_from(cls, architecture: str) -> ExploreParams | None:
        """The parameters a record carries, or None for a record written without them (older versions)."""
        held = read_entry(architecture, EXPLORE_KEY)
        if held is None:
            return None
        return cls(alpha=held["alpha"], perturbation=held["perturbation"])


#: What a learner and a ranker use for a record written without explore parameters (DRN's α = 0.1).
DEFAULT_EXPLORE = ExploreParams(0.1, Perturbation.MULTIPLICATIVE)


def without_explore(architecture: dict[str, Any]) -> dict[str, Any]:
    """A parsed architecture without its explore parameters (what builds the network)."""
    return {k: v for k, v in architecture.items() if k != EXPLORE_KEY}
