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

import numpy as np
import numpy.typing as npt

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
