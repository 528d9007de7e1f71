"""Per-window Dueling Bandit Gradient Descent of design.md §5, as a plain class with explicit state.

The Flink job calls `DbgdLearner.on_window` once per (model, window) with the final WinRate rows of
that window (computed in the JVM) and keeps `snapshot()` bytes in Flink state. Nothing here reads a
clock, a global random state or pyflink: the same rows give the same decisions and the same
ModelWeights bytes, so replays are byte-identical.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models import snapshots
from models.perturbation import ExploreParams, Perturbation, explore_delta
from models.probation import ProbationParams, Verdict, probation_seed, verdict, without_probation
from models.weights import (
    FlatWeights,
    Layout,
    ParamSpec,
    from_bytes,
    make_model_weights_record,
    parse_model_weights_record,
    to_bytes,
)

log = logging.getLogger(__name__)

ACCEPT, REJECT, STALE, PROBATION = "ACCEPT", "REJECT", "STALE", "PROBATION"

#: Input fields of one window row (the WinRate schema less `win_rate` and `decision`).
ROW_FIELDS: tuple[str, ...] = (
    "model_id",
    "window_start",
    "window_end",
    "model_version",
    "explore_seed",
    "impressions",
    "explore_wins",
    "current_wins",
    "ties",
    "no_clicks",
)
_COUNT_FIELDS = ("impressions", "explore_wins", "current_wins", "ties", "no_clicks")

_MIN = 60_000
#: DRN's window and attribution window (design.md §4), both 30 min.
DRN_WINDOW_MS = 30 * _MIN
DRN_ATTRIBUTION_WINDOW_MS = 30 * _MIN


def default_max_staleness(window_ms: int, attribution_window_ms: int) -> int:
    """Versions a row may lag the learner and still move the weights: ceil(attribution/window) + 1.

    A window's rows are decided one attribution window after it closes; by then the learner has
    published at most ceil(attribution/window) newer versions (one per earlier window decided
    since the impressions were served), plus one for the ranker still serving the version before
    the latest while the new one propagates.
    """
    if window_ms <= 0 or attribution_window_ms < 0:
        raise ValueError(
            f"window must be > 0 ms and attribution window >= 0 ms, "
            f"got {window_ms} and {attribution_window_ms}"
        )
    return math.ceil(attribution_window_ms / window_ms) + 1


#: 2 for DRN's 30 min windows and 30 min attribution window.
DEFAULT_MAX_STALENESS = default_max_staleness(DRN_WINDOW_MS, DRN_ATTRIBUTION_WINDOW_MS)


@dataclass(frozen=True)
class DbgdConfig:
    """DBGD settings of one minor-update job. Ranker and learner rebuild the explore network from (seed,
    W_base, alpha, perturbation): a version whose record carries its explore parameters (architecture,
    models.perturbation.ExploreParams) is learned with those; `alpha` and `perturbation` here are for
    records without them. With `explore_pinned`, a version carrying other parameters is refused."""

    #: Step: W moves by eta times the mean accepted explore direction (1.0 = all the way to W~).
    eta: float = 0.5
    #: Exploration scale of ΔW(seed; W) (DRN's α).
    alpha: float = 0.1
    perturbation: str = Perturbation.MULTIPLICATIVE.value
    #: Refuse to rebase on a version whose explore parameters differ from alpha/perturbation above.
    explore_pinned: bool = False
    #: A row may move W when learner.version - row.model_version <= max_staleness.
    max_staleness: int = DEFAULT_MAX_STALENESS
    #: Minimum explore_wins + current_wins for an ACCEPT; 0 = off (DRN).
    min_decided: int = 0
    #: One-sided binomial test of explore_wins vs current_wins at this confidence; None = off (DRN).
    confidence: float | None = None
    #: Refuse an update whose L2 norm exceeds this times ||W|| (inf = off). Non-finite is always refused.
    max_update_norm_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eta) and self.eta > 0):
            raise ValueError(f"DbgdConfig.eta must be a finite number > 0, got {self.eta}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"DbgdConfig.alpha must be a finite number > 0, got {self.alpha}")
        try:
            kind = Perturbation(self.perturbation).value
        except ValueError:
            allowed = ", ".join(p.value for p in Perturbation)
            raise ValueError(
                f"DbgdConfig.perturbation must be one of {allowed}, got {self.perturbation!r}"
            ) from None
        object.__setattr__(self, "perturbation", kind)
        if (
            isinstance(self.max_staleness, bool)
            or not isinstance(self.max_staleness, int)
            or self.max_staleness < 0
        ):
            raise ValueError(f"DbgdConfig.max_staleness must be an int >= 0, got {self.max_staleness!r}")
        if (
            isinstance(self.min_decided, bool)
            or not isinstance(self.min_decided, int)
            or self.min_decided < 0
        ):
            raise ValueError(
                f"DbgdConfig.min_decided must be an int >= 0 (0 = off), got {self.min_decided!r}"
            )
        if self.confidence is not None and not (0.0 < self.confidence < 1.0):
            raise ValueError(f"DbgdConfig.confidence must be in (0, 1) or None (off), got {self.confidence}")
        if math.isnan(self.max_update_norm_ratio) or self.max_update_norm_ratio <= 0:
            raise ValueError(
                f"DbgdConfig.max_update_norm_ratio must be > 0 (inf = off), got {self.max_update_norm_ratio}"
            )

    @classmethod
    def for_windows(cls, window_ms: int, attribution_window_ms: int, **overrides: Any) -> DbgdConfig:
        """A config whose max_staleness covers one attribution window of windows of this size."""
        overrides.setdefault("max_staleness", default_max_staleness(window_ms, attribution_window_ms))
        return cls(**overrides)


def binomial_sf_half(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): the one-sided p-value of k explore wins in n decided."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if 2 * k <= n:  # the upper tail from below the mean is >= 1/2; use the symmetric lower tail
        return 1.0 - binomial_sf_half(n - k + 1, n)
    # Terms decrease from i = k on; sum them from the first, in log space, until negligible.
    term = math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0))
    total = 0.0
    i = k
    while True:
        total += term
        if i == n or term < total * 1e-17:
            return min(total, 1.0)
        term *= (n - i) / (i + 1)
        i += 1


@dataclass(frozen=True)
class WindowRow:
    """One validated input row; `counts` keeps the schema's count fields in order."""

    model_id: str
    window_start: int
    window_end: int
    model_version: int
    explore_seed: int
    counts: tuple[int, int, int, int, int]

    @property
    def explore_wins(self) -> int:
        return self.counts[1]

    @property
    def current_wins(self) -> int:
        return self.counts[2]

    def sort_key(self) -> tuple[int, int, tuple[int, ...]]:
        return (self.model_version, self.explore_seed, self.counts)

    def win_rate_record(self, decision: str) -> dict[str, Any]:
        decided = self.explore_wins + self.current_wins
        record: dict[str, Any] = {
            "model_id": self.model_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "model_version": self.model_version,
            "explore_seed": self.explore_seed,
        }
        record.update(zip(_COUNT_FIELDS, self.counts, strict=True))
        record["win_rate"] = self.explore_wins / decided if decided else None
        record["decision"] = decision
        return record


def _as_int(row: Mapping[str, Any], name: str, index: int) -> int:
    if name not in row:
        raise ValueError(f"window row {index}: missing field {name!r}")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"window row {index}: field {name!r} must be an int, got {value!r}")
    return int(value)


def parse_window_row(row: Mapping[str, Any], index: int) -> WindowRow:
    if "model_id" not in row:
        raise ValueError(f"window row {index}: missing field 'model_id'")
    counts = tuple(_as_int(row, f, index) for f in _COUNT_FIELDS)
    for name, value in zip(_COUNT_FIELDS, counts, strict=True):
        if value < 0:
            raise ValueError(f"window row {index}: field {name!r} must be >= 0, got {value}")
    parsed = WindowRow(
        model_id=str(row["model_id"]),
        window_start=_as_int(row, "window_start", index),
        window_end=_as_int(row, "window_end", index),
        model_version=_as_int(row, "model_version", index),
        explore_seed=_as_int(row, "explore_seed", index),
        counts=(counts[0], counts[1], counts[2], counts[3], counts[4]),
    )
    if sum(counts[1:]) != counts[0]:
        log.warning(
            "window row %d (model %s, version %d, seed %d): outcome counts sum to %d, impressions is %d",
            index,
            parsed.model_id,
            parsed.model_version,
            parsed.explore_seed,
            sum(counts[1:]),
            counts[0],
        )
    return parsed


@dataclass
class WindowResult:
    """What one window produced: its WinRate records (sorted by version, seed), at most one MINOR
    ModelWeights record, and why an update was refused (None when not)."""

    win_rates: list[dict[str, Any]]
    weights: dict[str, Any] | None = None
    refused: str | None = None
    #: (model_version, explore_seed, why) for each STALE row: the same text that was logged.
    stale_reasons: list[tuple[int, int, str]] = field(default_factory=list)
    #: The probation verdict this window reached (its ROLLBACK record, if any, is `weights`).
    verdict: Verdict | None = None


def check_same_window(model_id: str, rows: Sequence[WindowRow]) -> None:
    """Raise ValueError unless every row is of `model_id` and of one window with end > start."""
    first = rows[0]
    for row in rows:
        if row.model_id != model_id:
            raise ValueError(f"window row of model {row.model_id!r} given to the learner of {model_id!r}")
        if (row.window_start, row.window_end) != (first.window_start, first.window_end):
            raise ValueError(
                f"model {model_id}: rows of windows [{first.window_start}, {first.window_end}) and "
                f"[{row.window_start}, {row.window_end}) in one on_window call; pass one window at a time"
            )
    if first.window_end <= first.window_start:
        raise ValueError(f"model {model_id}: window_end {first.window_end} must be > window_start {first.window_start}")


def late_window(model_id: str, rows: Sequence[Mapping[str, Any]], why: str) -> WindowResult:
    """Every row of a window that arrived after a later one was decided, STALE with `why` (any learner)."""
    parsed = sorted((parse_window_row(r, i) for i, r in enumerate(rows)), key=WindowRow.sort_key)
    if not parsed:
        return WindowResult(win_rates=[])
    check_same_window(model_id, parsed)
    log.warning("model %s window [%d, %d): %d rows are STALE: %s", model_id, parsed[0].window_start,
                parsed[0].window_end, len(parsed), why)
    return WindowResult(win_rates=[r.win_rate_record(STALE) for r in parsed],
                        stale_reasons=[(r.model_version, r.explore_seed, why) for r in parsed])


@dataclass
class _Probation:
    """A version on probation against its parent (models/probation.py): the parent's weights (a ROLLBACK
    republishes them) and the tally so far."""

    version: int
    parent_version: int
    params: ProbationParams
    parent_flat: FlatWeights
    parent_architecture: str
    windows: int = 0
    version_wins: int = 0
    parent_wins: int = 0

    @property
    def seed(self) -> int:
        return probation_seed(self.version, self.parent_version)

    def to_header(self) -> dict[str, Any]:
        return {"version": self.version, "parent_version": self.parent_version, "windows": self.windows,
                "version_wins": self.version_wins, "parent_wins": self.parent_wins,
                "params": self.params.as_dict(),
                "parent_architecture": self.parent_architecture}


_SNAPSHOT_MAGIC = b"DRNFLOW-DBGD\x01"


class DbgdLearner:
    """DBGD state of one model_id: its current version, the last `max_staleness` versions'
    weights (W_base of late rows), the next version number and the minor updates since the last MAJOR.

    Starts empty; `rebase` on a MAJOR (or ROLLBACK) ModelWeights record or `restore` gives it weights.
    """

    def __init__(self, model_id: str, config: DbgdConfig | None = None) -> None:
        if not model_id:
            raise ValueError("DbgdLearner.model_id must be a non-empty string")
        self.model_id = model_id
        self.config = config if config is not None else DbgdConfig()
        self._version: int | None = None
        self._history: dict[int, FlatWeights] = {}
        self._layout: Layout = []
        self._architecture = ""
        self._explore = self._configured_explore()
        self._next_version = 0
        self._minor_count = 0
        self._probation: _Probation | None = None
        #: (version, probation seed) of the last probation that ended: a ranker may still interleave against the
        #: parent for a while (its rounds are not the job's windows); such rows must never be read as DBGD rows.
        self._ended: tuple[int, int] | None = None

    # --- read-only views -------------------------------------------------------------------------
    @property
    def version(self) -> int | None:
        return self._version

    @property
    def explore(self) -> ExploreParams:
        """α and ΔW kind the current version is learned with (its record's, else the config's)."""
        return self._explore

    def _configured_explore(self) -> ExploreParams:
        return ExploreParams(self.config.alpha, Perturbation(self.config.perturbation))

    def _explore_of(self, architecture: str) -> ExploreParams:
        held = ExploreParams.read_from(architecture)
        return held if held is not None else self._configured_explore()

    @property
    def next_version(self) -> int:
        return self._next_version

    @property
    def minor_count(self) -> int:
        """MINOR versions published since the last MAJOR (reset by `rebase` on a MAJOR)."""
        return self._minor_count

    @property
    def layout(self) -> Layout:
        return list(self._layout)

    @property
    def on_probation(self) -> tuple[int, int] | None:
        """(version, parent version) while the current version is on probation against its parent."""
        held = self._probation
        return None if held is None else (held.version, held.parent_version)

    @property
    def history_versions(self) -> list[int]:
        return sorted(self._history)

    def weights(self, version: int | None = None) -> FlatWeights:
        """A copy of the weights of `version` (default: the current one)."""
        v = self._version if version is None else version
        if v is None or v not in self._history:
            raise KeyError(f"model {self.model_id}: no weights for version {v}")
        return self._history[v].copy()

    def reserve_versions_through(self, version: int) -> None:
        """Never number a new version at or below `version` (versions already on the model-weights
        topic, e.g. an earlier run's MINORs, must not be reused); a no-op when already past it."""
        self._next_version = max(self._next_version, int(version) + 1)

    # --- model-weights topic ---------------------------------------------------------------------
    def rebase(self, record: Mapping[str, Any], parent: Mapping[str, Any] | None = None) -> bool:
        """Adopt a MAJOR or ROLLBACK ModelWeights record as the current version; True if adopted.

        MINOR records (this job's own output read back) and records not newer than the current
        version (replays, duplicates) are ignored. A corrupt record raises WeightsError. A MAJOR with
        probation parameters starts its probation against its parent: the learner's current version,
        or `parent` (that version's record, any kind: a job starting on the MAJOR reads it from the log).
        """
        if record.get("model_id") != self.model_id:
            raise ValueError(
                f"ModelWeights(model_id={record.get('model_id')!r}) given to the learner of {self.model_id!r}"
            )
        kind = record.get("kind")
        version = int(record["version"])
        if kind == "MINOR":
            log.debug(
                "model %s: ignoring MINOR v%d on rebase (only MAJOR/ROLLBACK rebase)", self.model_id, version
            )
            return False
        if kind not in ("MAJOR", "ROLLBACK"):
            raise ValueError(
                f"ModelWeights(model_id={self.model_id!r}, version={version}): unknown kind {kind!r}"
            )
        flat, layout = parse_model_weights_record(record)
        architecture = str(record.get("architecture", ""))
        explore = self._explore_of(architecture)
        if self.config.explore_pinned and explore != self._configured_explore():
            raise ValueError(
                f"model {self.model_id}: {kind} v{version} explores with {explore.describe()}, this learner "
                f"is pinned to {self._configured_explore().describe()}; not rebasing on it"
            )
        if self._version is not None and version == self._version and kind == "ROLLBACK":
            log.debug("model %s: ROLLBACK v%d is the current version (this learner's own)", self.model_id, version)
            return False
        if self._version is not None and version <= self._version:
            log.warning(
                "model %s: ignoring %s v%d, not newer than the learner's v%d",
                self.model_id,
                kind,
                version,
                self._version,
            )
            self._next_version = max(self._next_version, version + 1)
            return False
        probation = self._probation_for(record, kind, version, layout, parent)
        if layout != self._layout or explore != self._explore:
            self._history.clear()  # older versions cannot be W_base of another architecture or ΔW
        self._layout = layout
        self._architecture = without_probation(architecture)  # MINORs of it are not on probation
        self._probation = probation
        if probation is not None:
            log.info("model %s: MAJOR v%d on probation: %s v%d", self.model_id, version,
                     probation.params.describe(), probation.parent_version)
        self._explore = explore
        self._history[version] = flat
        self._version = version
        self._next_version = max(self._next_version, version + 1)
        if kind == "MAJOR":
            self._minor_count = 0
        self._prune()
        return True

    def resume_from(self, record: Mapping[str, Any]) -> bool:
        """Without state (a fresh job on topics an earlier job wrote MINORs to, or state it could not
        restore): start from the version the rankers serve, the newest record of the model of any kind. Rows
        of that version would be STALE forever ("newer than the learner's") if the learner stayed on the last
        MAJOR. A MINOR is taken as a ROLLBACK is: its weights become the current version, nothing else."""
        if record.get("kind") == "MINOR":
            return self.rebase({**record, "kind": "ROLLBACK"})
        return self.rebase(record)

    def _probation_for(self, record: Mapping[str, Any], kind: str, version: int, layout: Layout,
                       parent: Mapping[str, Any] | None) -> _Probation | None:
        """The probation a MAJOR record asks for, when the parent's weights are at hand with its layout."""
        params = ProbationParams.read_from(str(record.get("architecture", "")))
        if params is None or kind != "MAJOR" or record.get("parent_version") is None:
            return None
        parent_version = int(record["parent_version"])
        if self._version == parent_version and self._layout == layout:
            return _Probation(version, parent_version, params, self._history[parent_version].copy(),
                              self._architecture)
        if (parent is not None and parent.get("model_id") == self.model_id
                and int(parent["version"]) == parent_version):
            flat, parent_layout = parse_model_weights_record(parent)
            if parent_layout == layout:
                return _Probation(version, parent_version, params, flat,
                                  without_probation(str(parent.get("architecture", ""))))
        log.warning("model %s: MAJOR v%d asks for probation against v%d, whose weights (same layout) this "
                    "learner does not hold; no probation", self.model_id, version, parent_version)
        return None

    # --- one window ------------------------------------------------------------------------------
    def on_window(self, rows: Sequence[Mapping[str, Any]]) -> WindowResult:
        """Decide every row of one window (ACCEPT/REJECT/STALE) and publish at most one MINOR version.

        All rows must share this model_id, window_start and window_end. Their order does not matter:
        rows are sorted by (model_version, explore_seed) before anything is computed.
        """
        parsed = sorted((parse_window_row(r, i) for i, r in enumerate(rows)), key=WindowRow.sort_key)
        if not parsed:
            return WindowResult(win_rates=[])
        check_same_window(self.model_id, parsed)
        decided: list[tuple[WindowRow, str]] = []
        stale: list[tuple[int, int, str]] = []
        probation = self._probation if self._probation is not None and self._version == self._probation.version \
            else None
        on_trial_key = None if probation is None else (probation.version, probation.seed)
        for row in parsed:
            if (row.model_version, row.explore_seed) == on_trial_key:
                decided.append((row, PROBATION))
                continue
            if (row.model_version, row.explore_seed) == self._ended:
                why_stale: str | None = (f"a row of v{row.model_version} against its parent after its probation "
                                         "ended: it was not ranked with an explore network")
            elif row.explore_seed < 0:
                why_stale = f"explore_seed {row.explore_seed} is negative: no explore network has it"
            else:
                why_stale = self._why_stale(row.model_version, probation)
            if why_stale is not None:
                log.info(
                    "model %s window [%d, %d): row v%d seed %d is STALE: %s",
                    self.model_id,
                    row.window_start,
                    row.window_end,
                    row.model_version,
                    row.explore_seed,
                    why_stale,
                )
                stale.append((row.model_version, row.explore_seed, why_stale))
                decided.append((row, STALE))
            else:
                decided.append((row, ACCEPT if self._wins(row) else REJECT))
        window_start, window_end = parsed[0].window_start, parsed[0].window_end
        on_trial = [r for r, d in decided if d == PROBATION]
        result_verdict = self._tally(probation, on_trial) if probation is not None and on_trial else None
        rolled_back = result_verdict is not None and result_verdict.rolled_back
        if rolled_back:
            assert probation is not None
            why = f"v{probation.version} was rolled back in this window"
            for i, (r, d) in enumerate(decided):
                if d == ACCEPT:  # its explore direction is around a version that is gone
                    decided[i] = (r, STALE)
                    stale.append((r.model_version, r.explore_seed, why))
        result = WindowResult(win_rates=[r.win_rate_record(d) for r, d in decided], stale_reasons=stale,
                              verdict=result_verdict)
        if rolled_back:
            assert probation is not None
            result.weights = self._roll_back(probation, window_end)
            return result
        accepted = [r for r, d in decided if d == ACCEPT]
        if accepted:
            result.weights, result.refused = self._update(accepted, window_start, window_end)
            if result.weights is not None and self._probation is not None:
                log.warning("model %s: probation of v%d ends without a verdict: DBGD rows of it moved it to v%d "
                            "(a ranker explored instead of serving the parent)", self.model_id,
                            self._probation.version, self._version)
                self._ended = (self._probation.version, self._probation.seed)
                self._probation = None
        return result

    def _tally(self, probation: _Probation, rows: Sequence[WindowRow]) -> Verdict | None:
        """Count one probation window; after the last one, the verdict (and probation ends)."""
        probation.windows += 1
        probation.version_wins += sum(r.current_wins for r in rows)
        probation.parent_wins += sum(r.explore_wins for r in rows)
        if probation.windows < probation.params.windows:
            return None
        self._probation = None
        self._ended = (probation.version, probation.seed)
        result = verdict(probation.version, probation.parent_version, probation.params, probation.windows,
                         probation.version_wins, probation.parent_wins)
        log.log(logging.WARNING if result.rolled_back else logging.INFO, "model %s: %s", self.model_id,
                result.describe())
        return result

    def _roll_back(self, probation: _Probation, window_end: int) -> dict[str, Any]:
        """ROLLBACK: the parent's weights again, as the next version; the learner adopts it at once."""
        version = self._next_version
        record = make_model_weights_record(
            model_id=self.model_id,
            version=version,
            parent_version=probation.parent_version,
            kind="ROLLBACK",
            flat=probation.parent_flat,
            layout=self._layout,
            created_at=window_end,
            explore_seeds=[],
            architecture=probation.parent_architecture,
        )
        self._history.clear()  # the rolled-back version's rows are stale from now on
        self._history[version] = probation.parent_flat.copy()
        self._architecture = probation.parent_architecture
        self._explore = self._explore_of(self._architecture)
        self._version = version
        self._next_version = version + 1
        self._prune()
        return record

    def on_late_window(self, rows: Sequence[Mapping[str, Any]], why: str) -> WindowResult:
        """Rows of a window that arrived after a later window was decided (old event times fed after a
        restore): every row is STALE with `why`, the weights do not move. Late data is never fatal."""
        return late_window(self.model_id, rows, why)

    def _why_stale(self, model_version: int, probation: _Probation | None = None) -> str | None:
        if self._version is None:
            return "the learner has no weights yet (no MAJOR version seen)"
        lag = self._version - model_version
        if lag < 0:
            return f"version {model_version} is newer than the learner's v{self._version}"
        if probation is not None and lag > 0:
            return (f"v{self._version} is on probation against v{probation.parent_version}: rows of older "
                    "versions do not move it")
        if lag > self.config.max_staleness:
            return f"{lag} versions behind v{self._version}, max_staleness is {self.config.max_staleness}"
        if model_version not in self._history:
            return f"version {model_version} is unknown to the learner (not in its history)"
        return None

    def _wins(self, row: WindowRow) -> bool:
        e, c = row.explore_wins, row.current_wins
        if e <= c:
            return False
        if e + c < self.config.min_decided:
            return False
        return self.config.confidence is None or binomial_sf_half(e, e + c) <= 1.0 - self.config.confidence

    def _update(
        self, accepted: Sequence[WindowRow], window_start: int, window_end: int
    ) -> tuple[dict[str, Any] | None, str | None]:
        assert self._version is not None
        current = self._history[self._version]
        total = np.zeros(current.size, dtype=np.float64)
        for row in accepted:
            base = self._history[row.model_version]
            total += explore_delta(base, row.explore_seed, self._explore.alpha, self._explore.perturbation)
        step = self.config.eta * total / len(accepted)
        with np.errstate(over="ignore", invalid="ignore"):  # the guard below reports non-finite values
            new = (current.astype(np.float64) + step).astype(np.float32)
        refused = self._guard(step, current, new)
        if refused is not None:
            log.warning(
                "model %s window [%d, %d): update refused: %s",
                self.model_id,
                window_start,
                window_end,
                refused,
            )
            return None, refused
        version = self._next_version
        record = make_model_weights_record(
            model_id=self.model_id,
            version=version,
            parent_version=self._version,
            kind="MINOR",
            flat=new,
            layout=self._layout,
            created_at=window_end,
            explore_seeds=[r.explore_seed for r in accepted],
            window_start=window_start,
            window_end=window_end,
            architecture=self._architecture,
        )
        self._history[version] = new
        self._version = version
        self._next_version = version + 1
        self._minor_count += 1
        self._prune()
        return record, None

    def _guard(self, step: np.ndarray, current: FlatWeights, new: FlatWeights) -> str | None:
        if not (np.all(np.isfinite(step)) and np.all(np.isfinite(new))):
            return "non-finite update (NaN or inf in the step or the new weights)"
        # Sum of squares, not np.linalg.norm: BLAS dot spins up threads that stall on a busy host.
        step_norm = math.sqrt(float(np.square(step).sum()))
        w_norm = math.sqrt(float(np.square(current, dtype=np.float64).sum()))
        limit = self.config.max_update_norm_ratio * w_norm
        if w_norm > 0 and step_norm > limit:
            return (
                f"update norm {step_norm:.6g} exceeds max_update_norm_ratio "
                f"{self.config.max_update_norm_ratio} x ||W|| = {limit:.6g}"
            )
        return None

    def _prune(self) -> None:
        if self._version is None:
            return
        oldest = self._version - self.config.max_staleness
        for v in [v for v in self._history if v < oldest or v > self._version]:
            del self._history[v]

    # --- Flink state -----------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Deterministic bytes of the whole state (models/snapshots.py): the header, then each kept version's
        float32-LE weights in ascending version order, then a probation's parent weights."""
        entries, blobs = snapshots.history_entries(self._history)
        header = {
            "format": 1,
            "model_id": self.model_id,
            "version": self._version,
            "next_version": self._next_version,
            "minor_count": self._minor_count,
            "architecture": self._architecture,
            "layout": [p.to_record() for p in self._layout],
            "history": entries,
        }
        if self._ended is not None:  # absent otherwise: snapshots without probation keep their bytes
            header["probation_ended"] = list(self._ended)
        if self._probation is not None:
            parent = to_bytes(self._probation.parent_flat)
            header["probation"] = {**self._probation.to_header(), "parent_weights": snapshots.blob_entry(parent)}
            blobs.append(parent)
        return snapshots.pack(_SNAPSHOT_MAGIC, header, blobs)

    def restore(self, data: bytes) -> None:
        """Replace this learner's state with a `snapshot()`; raises ValueError on foreign or corrupt bytes."""
        reader = snapshots.Reader(data, _SNAPSHOT_MAGIC, f"model {self.model_id}: DbgdLearner snapshot")
        header = reader.header
        if header.get("format") != 1:
            raise ValueError(f"model {self.model_id}: unsupported snapshot format {header.get('format')!r}")
        if header["model_id"] != self.model_id:
            raise ValueError(
                f"snapshot of model {header['model_id']!r} restored into the learner of {self.model_id!r}"
            )
        history = reader.history(header["history"])
        probation = None
        held = header.get("probation")
        if held is not None:
            blob = reader.blob(held["parent_weights"], "probation weights")
            params = ProbationParams(windows=int(held["params"]["windows"]),
                                     min_win_rate=float(held["params"]["min_win_rate"]),
                                     confidence=float(held["params"].get("confidence", 0.0)))
            probation = _Probation(int(held["version"]), int(held["parent_version"]), params, from_bytes(blob),
                                   str(held["parent_architecture"]), int(held["windows"]),
                                   int(held["version_wins"]), int(held["parent_wins"]))
        reader.end()
        self._version = None if header["version"] is None else int(header["version"])
        self._next_version = int(header["next_version"])
        self._minor_count = int(header["minor_count"])
        self._architecture = str(header["architecture"])
        self._explore = self._explore_of(self._architecture)
        self._layout = [ParamSpec.from_record(p) for p in header["layout"]]
        self._history = history
        self._probation = probation
        ended = header.get("probation_ended")
        self._ended = None if ended is None else (int(ended[0]), int(ended[1]))
        self._prune()
