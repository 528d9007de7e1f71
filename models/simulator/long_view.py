"""A long view per click: the user watches the clicked movie past a dwell threshold with a probability
set by its grade (how much the user truly likes it), so a click on a poorly graded item that only looked
attractive is mostly abandoned. Exact in expectation: P(long view at i) = P(click at i) * p_by_grade[g_i].

The simulator draws these from their own seeded stream, after everything else, so impressions, clicks,
grades and arrivals of every existing seed are unchanged; the long views do not feed satisfaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.simulator.click_models import MAX_GRADE, ClickModel


@dataclass(frozen=True)
class LongViewConfig:
    """P(long view | click) by grade 0..4."""

    p_by_grade: tuple[float, ...] = (0.05, 0.15, 0.35, 0.6, 0.85)

    def __post_init__(self) -> None:
        if len(self.p_by_grade) != MAX_GRADE + 1 or not all(0.0 <= p <= 1.0 for p in self.p_by_grade):
            raise ValueError(f"LongViewConfig.p_by_grade needs {MAX_GRADE + 1} probabilities in [0, 1], "
                             f"got {self.p_by_grade}")

    def sample(self, clicked_grades: Sequence[int], rng: np.random.Generator) -> tuple[bool, ...]:
        """One flag per click, in the clicks' order; one uniform per click."""
        g = clicked_grades
        if type(g) is list and all(type(x) is int and 0 <= x <= MAX_GRADE for x in g):  # the simulator's
            p = self.p_by_grade
            return tuple(u < p[x] for u, x in zip(rng.random(len(g)).tolist(), g, strict=True))
        pa = np.asarray(self.p_by_grade)[np.asarray(g, dtype=np.int64)]
        return tuple(bool(x) for x in rng.random(pa.size) < pa)

    def probabilities(self, model: ClickModel,
                      grades: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        """Exact P(long view) per position of a list with these grades under the click model."""
        g = np.asarray(grades, dtype=np.int64)
        out: npt.NDArray[np.float64] = model.click_probabilities(g) * np.asarray(self.p_by_grade)[g]
        return out
