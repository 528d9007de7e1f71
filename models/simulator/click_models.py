"""Click models of the online-LTR literature: the three cascade models (Hofmann et al.; Schuth et al.
2016; Oosterhuis & de Rijke 2018) and a position-based model (PBM).

Cascade: the user examines the list top-down, clicks a slot of grade g with P(click|g), and after a
click stops with P(stop|g). PBM: P(click at position i) = P(examine i) · P(attractive | grade),
independently per slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

MAX_GRADE = 4


class ClickModel(Protocol):
    @property
    def name(self) -> str: ...

    def sample(self, grades: Sequence[int] | npt.NDArray[np.integer], rng: np.random.Generator) -> list[int]:
        """0-based positions clicked, in the order the user clicked them."""
        ...

    def click_probabilities(self, grades: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        """Exact marginal P(click) per position (for expected CTR without sampling noise)."""
        ...


def _check_probs(name: str, field: str, values: Sequence[float], n: int) -> None:
    if len(values) != n:
        raise ValueError(f"click model {name!r}: {field} needs {n} values, got {len(values)}")
    if any(not (0.0 <= v <= 1.0) for v in values):
        raise ValueError(f"click model {name!r}: {field} values must be in [0, 1], got {values}")


def _grades(grades: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    g = np.asarray(grades, dtype=np.int64).reshape(-1)
    if g.size and (g.min() < 0 or g.max() > MAX_GRADE):
        raise ValueError(f"grades must be in 0..{MAX_GRADE}, got {g.tolist()}")
    return g


def grade_list(grades: Sequence[int] | npt.NDArray[np.integer]) -> list[int]:
    """`grades` as a list of ints in 0..MAX_GRADE: a list of such ints as it is (the simulator's, no numpy
    round trip), anything else through `_grades` (which flattens, casts and refuses what is out of range)."""
    if type(grades) is list and all(type(g) is int and 0 <= g <= MAX_GRADE for g in grades):
        return grades
    out: list[int] = _grades(grades).tolist()
    return out


@dataclass(frozen=True)
class CascadeModel:
    name: str
    p_click: tuple[float, ...]
    p_stop: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_probs(self.name, "p_click", self.p_click, MAX_GRADE + 1)
        _check_probs(self.name, "p_stop", self.p_stop, MAX_GRADE + 1)

    def sample(self, grades: Sequence[int] | npt.NDArray[np.integer], rng: np.random.Generator) -> list[int]:
        g = grade_list(grades)
        # Python floats compare as the float64 arrays did; a list is read without numpy's per-item cost
        u = rng.random((len(g), 2)).tolist()
        pc, ps = self.p_click, self.p_stop
        clicked: list[int] = []
        for i, (gi, (u_click, u_stop)) in enumerate(zip(g, u, strict=True)):
            if u_click < pc[gi]:
                clicked.append(i)
                if u_stop < ps[gi]:
                    break
        return clicked

    def click_probabilities(self, grades: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        g = _grades(grades)
        pc = np.asarray(self.p_click)[g]
        ps = np.asarray(self.p_stop)[g]
        # P(examine i) = Π_{j<i} (1 - pc_j · ps_j)
        keep_going = 1.0 - pc * ps
        examine = np.concatenate([[1.0], np.cumprod(keep_going)[:-1]]) if g.size else np.empty(0)
        out: npt.NDArray[np.float64] = examine * pc
        return out


@dataclass(frozen=True)
class PositionBasedModel:
    """PBM with P(examine i) = (1 / (i + 1))^eta (Joachims et al. 2017) and attractiveness
    ε + (1 - ε)(2^g - 1)/(2^4 - 1) (the graded form used in unbiased-LTR simulations)."""

    name: str = "pbm"
    eta: float = 1.0
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not (np.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"PositionBasedModel.eta must be a finite number >= 0, got {self.eta}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"PositionBasedModel.epsilon must be in [0, 1], got {self.epsilon}")

    def attractiveness(self, grades: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        return self.epsilon + (1 - self.epsilon) * (2.0 ** grades - 1) / (2.0 ** MAX_GRADE - 1)

    def examination(self, n: int) -> npt.NDArray[np.float64]:
        return (1.0 / np.arange(1, n + 1, dtype=np.float64)) ** self.eta

    def click_probabilities(self, grades: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        g = _grades(grades)
        return self.examination(g.size) * self.attractiveness(g)

    def sample(self, grades: Sequence[int] | npt.NDArray[np.integer], rng: np.random.Generator) -> list[int]:
        p = self.click_probabilities(grades)
        return [int(i) for i in np.flatnonzero(rng.random(p.size) < p)]


PERFECT = CascadeModel("perfect", (0.0, 0.2, 0.4, 0.8, 1.0), (0.0, 0.0, 0.0, 0.0, 0.0))
NAVIGATIONAL = CascadeModel("navigational", (0.05, 0.3, 0.5, 0.7, 0.95), (0.2, 0.3, 0.5, 0.7, 0.9))
INFORMATIONAL = CascadeModel("informational", (0.4, 0.6, 0.7, 0.8, 0.9), (0.1, 0.2, 0.3, 0.4, 0.5))
CASCADE_MODELS: dict[str, CascadeModel] = {m.name: m for m in (PERFECT, NAVIGATIONAL, INFORMATIONAL)}
CLICK_MODELS: dict[str, ClickModel] = {**CASCADE_MODELS, "pbm": PositionBasedModel()}


def click_model(name: str) -> ClickModel:
    """The click model called `name` (perfect, navigational, informational, pbm)."""
    try:
        return CLICK_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown click model {name!r}; known: {', '.join(CLICK_MODELS)}") from None
