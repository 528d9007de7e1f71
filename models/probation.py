"""Probation of a new base version: interleave it against its parent, roll it back if it loses (design.md §5).

A MAJOR version trained offline can be worse online than the version it replaces, and the offline gate
cannot always tell. A MAJOR published with probation parameters (`major-update --probation-windows N`)
is therefore served for its first N rounds against its *parent* instead of against explore
perturbations: the ranker interleaves the new version's list with the parent's (the parent is the
explore team, under the seed `probation_seed(version, parent)`), and the minor-update job, instead of
a DBGD step, counts who won. After N decided windows it rolls the version back (a ROLLBACK record with
the parent's weights, decided by the job) when the new version's share of the decided impressions is
below `min_win_rate` (with `confidence` > 0: when even the upper one-sided Wilson bound of that share is
below it, so a near tie is kept); otherwise probation ends and DBGD resumes on the new version.

Both sides read the parameters from the version's record (`architecture`, key "probation"), as they do
the explore parameters, so ranker and job cannot disagree about them. Both need the parent's weights at
hand (the version they served / learned before, same layout); without them there is no probation.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import dataclass

from models.architecture import read_entry, with_entry, without_entry

#: Key of the probation parameters inside a ModelWeights record's `architecture` JSON.
PROBATION_KEY = "probation"


@dataclass(frozen=True)
class ProbationParams:
    """How long a new version is interleaved against its parent and the share of decided impressions it
    must win to stay."""

    windows: int
    min_win_rate: float = 0.5
    #: 0: roll back whenever the win rate is below min_win_rate (a coin flip for a near tie); c in (0, 1):
    #: only when the upper one-sided c-confidence Wilson bound of the win rate is below it.
    confidence: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.windows, bool) or not isinstance(self.windows, int) or self.windows < 1:
            raise ValueError(f"probation windows must be an int >= 1, got {self.windows!r}")
        if isinstance(self.min_win_rate, bool) or not (math.isfinite(self.min_win_rate)
                                                        and 0.0 <= self.min_win_rate <= 1.0):
            raise ValueError(f"probation min_win_rate must be in [0, 1], got {self.min_win_rate!r}")
        object.__setattr__(self, "min_win_rate", float(self.min_win_rate))
        if isinstance(self.confidence, bool) or not (math.isfinite(self.confidence) and 0.0 <= self.confidence < 1.0):
            raise ValueError(f"probation confidence must be in [0, 1), got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))

    def describe(self) -> str:
        sure = f" with {self.confidence:.0%} confidence" if self.confidence else ""
        return (f"{self.windows} windows against its parent, rolled back below a win rate of "
                f"{self.min_win_rate:g}{sure}")

    def as_dict(self) -> dict[str, float | int]:
        """The parameters as written (confidence only when set, so records without it keep their bytes)."""
        held: dict[str, float | int] = {"windows": self.windows, "min_win_rate": self.min_win_rate}
        if self.confidence:
            held["confidence"] = self.confidence
        return held

    def written_into(self, architecture: str) -> str:
        """`architecture` (a JSON object, or "") with these parameters under PROBATION_KEY."""
        return with_entry(architecture, PROBATION_KEY, self.as_dict())

    @classmethod
    def read_from(cls, architecture: str) -> ProbationParams | None:
        """The parameters a record carries; None for a record without them (no probation) or unreadable ones."""
        held = read_entry(architecture, PROBATION_KEY)
        if not isinstance(held, dict):
            return None
        try:
            return cls(windows=held["windows"], min_win_rate=held.get("min_win_rate", 0.5),
                       confidence=held.get("confidence", 0.0))
        except (KeyError, TypeError, ValueError):
            return None


def without_probation(architecture: str) -> str:
    """`architecture` less its probation parameters: what a ROLLBACK to the parent, or a MINOR, carries."""
    return without_entry(architecture, PROBATION_KEY)


def probation_seed(version: int, parent_version: int) -> int:
    """The explore seed an impression of `version` on probation carries: 63-bit, non-negative, from
    blake2b-64 of "probation:<version>:<parent>" (so it needs no ranker setting; a clash with a DBGD seed
    has probability 2^-63). The explore team of such an impression ranked with the parent's weights."""
    digest = hashlib.blake2b(f"probation:{int(version)}:{int(parent_version)}".encode("ascii"), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


def is_probation_round(round_idx: int, first_round: int, params: ProbationParams) -> bool:
    """A ranker serves a version on probation in the `params.windows` rounds from the first it served it in."""
    return first_round <= round_idx < first_round + params.windows


@dataclass(frozen=True)
class Verdict:
    """What probation decided: roll back or keep, on how many decided impressions."""

    version: int
    parent_version: int
    windows: int
    version_wins: int
    parent_wins: int
    rolled_back: bool

    @property
    def win_rate(self) -> float | None:
        decided = self.version_wins + self.parent_wins
        return self.version_wins / decided if decided else None

    def describe(self) -> str:
        rate = "no decided impressions" if self.win_rate is None else f"win rate {self.win_rate:.3f}"
        what = "rolled back to" if self.rolled_back else "kept over"
        return (f"v{self.version} {what} v{self.parent_version} after {self.windows} probation windows "
                f"({rate}: {self.version_wins} won, {self.parent_wins} lost)")


def upper_win_rate(wins: int, decided: int, confidence: float) -> float:
    """The upper one-sided `confidence` Wilson score bound of wins/decided (the share itself at 0)."""
    share = wins / decided
    if confidence <= 0:
        return share
    z = statistics.NormalDist().inv_cdf(confidence)
    z2n = z * z / decided
    centre = share + z2n / 2
    spread = z * math.sqrt(share * (1 - share) / decided + z2n / (4 * decided))
    return (centre + spread) / (1 + z2n)


def verdict(version: int, parent_version: int, params: ProbationParams, windows: int, version_wins: int,
            parent_wins: int) -> Verdict:
    """Roll back when the version won less than `min_win_rate` of the decided impressions (with a
    confidence: when the upper Wilson bound of its share is below it); a probation without any decided
    impression keeps the version (no evidence against it)."""
    decided = version_wins + parent_wins
    rolled_back = decided > 0 and upper_win_rate(version_wins, decided, params.confidence) < params.min_win_rate
    return Verdict(version, parent_version, windows, version_wins, parent_wins, rolled_back)
