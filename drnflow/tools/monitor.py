"""What `drnflow monitor` shows: per model, the last windows' win-rates with a Wilson interval, the
decision, the version lineage and how far the model lags behind the newest event. Pure functions of the
records read from `win-rates`, `model-weights` and `impressions`; reading and drawing are elsewhere."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from drnflow.tools.timespec import format_time_ms

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054


def wilson_interval(wins: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion wins/n (None when n = 0): unlike the normal
    approximation it stays inside [0, 1] and is sensible for the small counts of short windows."""
    if wins < 0 or n < 0 or wins > n:
        raise ValueError(f"wilson_interval needs 0 <= wins <= n, got wins={wins}, n={n}")
    if n == 0:
        return None
    p = wins / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # In exact arithmetic lo = 0 at wins = 0 and hi = 1 at wins = n; rounding can miss by 1e-18, so the
    # bounds are also clamped to contain the estimate itself.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


@dataclass(frozen=True)
class WindowRow:
    """One WinRate record plus its interval."""

    window_start: int
    window_end: int
    model_version: int
    explore_seed: int
    impressions: int
    explore_wins: int
    current_wins: int
    ties: int
    no_clicks: int
    win_rate: float | None
    decision: str
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> WindowRow:
        e, c = int(r["explore_wins"]), int(r["current_wins"])
        # A row without a win rate (PDGD: no explore list) has no interval either.
        ci = None if r["win_rate"] is None else wilson_interval(e, e + c)
        return cls(int(r["window_start"]), int(r["window_end"]), int(r["model_version"]), int(r["explore_seed"]),
                   int(r["impressions"]), e, c, int(r["ties"]), int(r["no_clicks"]),
                   None if r["win_rate"] is None else float(r["win_rate"]), str(r["decision"]),
                   None if ci is None else ci[0], None if ci is None else ci[1])


@dataclass(frozen=True)
class VersionInfo:
    version: int
    kind: str
    parent_version: int | None
    created_at: int
    window_start: int | None
    window_end: int | None

    @classmethod
    def of(cls, w: Mapping[str, Any]) -> VersionInfo:
        return cls(int(w["version"]), str(w["kind"]), None if w["parent_version"] is None else int(w["parent_version"]),
                   int(w["created_at"]), w.get("window_start"), w.get("window_end"))


@dataclass
class ModelView:
    model_id: str
    windows: list[WindowRow] = field(default_factory=list)
    #: Newest version first, following parent_version.
    lineage: list[VersionInfo] = field(default_factory=list)
    last_window_end: int | None = None
    lag_ms: int | None = None
    total_windows: int = 0
    accepted_updates: int = 0


def weights_metadata(w: Mapping[str, Any]) -> dict[str, Any]:
    """A ModelWeights record without its (large) weight bytes."""
    return {k: v for k, v in w.items() if k not in ("weights", "layout", "architecture")}


def lineage_of(versions: Mapping[int, VersionInfo], newest: int, depth: int) -> list[VersionInfo]:
    chain: list[VersionInfo] = []
    seen: set[int] = set()
    v: int | None = newest
    while v is not None and v in versions and v not in seen and len(chain) < depth:
        seen.add(v)
        chain.append(versions[v])
        v = versions[v].parent_version
    return chain


def build_views(win_rates: Iterable[Mapping[str, Any]], weights: Iterable[Mapping[str, Any]],
                newest_event_time: int | None, last_windows: int = 5, lineage_depth: int = 6) -> list[ModelView]:
    """Per model (sorted by id): rows of the last `last_windows` windows (all seeds/versions of a window),
    the lineage of the newest version, and the lag of the last finished window behind the newest event."""
    if last_windows < 1 or lineage_depth < 1:
        raise ValueError("last_windows and lineage_depth must be >= 1")
    rows: dict[str, list[WindowRow]] = {}
    for r in win_rates:
        rows.setdefault(str(r["model_id"]), []).append(WindowRow.of(r))
    versions: dict[str, dict[int, VersionInfo]] = {}
    order: dict[str, list[int]] = {}
    for w in weights:
        info = VersionInfo.of(w)
        model = str(w["model_id"])
        versions.setdefault(model, {})[info.version] = info
        order.setdefault(model, []).append(info.version)
    views = []
    for model in sorted(set(rows) | set(versions)):
        view = ModelView(model)
        mine = sorted(rows.get(model, []), key=lambda x: (x.window_start, x.model_version, x.explore_seed))
        starts = sorted({x.window_start for x in mine})
        keep = set(starts[-last_windows:])
        view.windows = [x for x in mine if x.window_start in keep]
        view.total_windows = len(starts)
        if mine:
            view.last_window_end = max(x.window_end for x in mine)
            if newest_event_time is not None:
                view.lag_ms = max(0, newest_event_time - view.last_window_end)
        if model in versions:
            # The newest version is the last one published (a ROLLBACK may carry a lower parent).
            view.lineage = lineage_of(versions[model], order[model][-1], lineage_depth)
            view.accepted_updates = sum(1 for v in versions[model].values() if v.kind == "MINOR")
        views.append(view)
    return views


# ------------------------------------------------------------------------------------------------ output
def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "unknown"
    s = ms / 1000
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def format_lineage(chain: Sequence[VersionInfo]) -> str:
    if not chain:
        return "no versions yet"
    parts = [f"v{v.version}" + ("" if v.kind == "MINOR" else f" ({v.kind})") for v in chain]
    tail = "" if chain[-1].parent_version is None else " ← …"
    return " ← ".join(parts) + tail


def _why_nothing_yet(newest_event_time: int | None) -> str:
    """What a user waiting for the first row needs to know: when a row is written, and where event time is."""
    from jobs.minor_update_config import MinorUpdateConfig

    job = MinorUpdateConfig()  # the job's defaults: what a `submit minor-update` without flags runs
    window, attribution = job.window_ms, job.attribution_window_ms
    where = ("no impressions yet" if newest_event_time is None
             else f"newest impression event time {format_time_ms(newest_event_time)}")
    return (f"{where}. A window's row is written once the job's watermark (the newest event time less its "
            f"out-of-orderness) passes the window's end plus the attribution window (by default "
            f"{_duration(window)} windows + {_duration(attribution)}: the first row comes at most "
            f"{_duration(window + attribution)} of event time after the first impression; the job's --window "
            f"and --attribution-window set them)")


def format_table(views: Sequence[ModelView], newest_event_time: int | None = None) -> str:
    """The human view: one block per model."""
    if not views:
        return f"no win-rates or model versions yet; {_why_nothing_yet(newest_event_time)}\n"
    lines = []
    for v in views:
        lines.append(f"model {v.model_id}: {format_lineage(v.lineage)}; {v.accepted_updates} accepted updates, "
                     f"{v.total_windows} windows; lag behind newest event {_duration(v.lag_ms)}")
        if not v.windows:
            lines.append(f"  (no finished windows yet; {_why_nothing_yet(newest_event_time)})")
            lines.append("")
            continue
        lines.append(f"  {'window (UTC)':<31} {'version':>7} {'seed':>12} {'impr':>7} {'explore':>7} "
                     f"{'current':>7} {'win-rate':>8} {'95% CI':>15}  decision")
        for r in v.windows:
            window = f"{format_time_ms(r.window_start)[:19]}+{_duration(r.window_end - r.window_start)}"
            ci = "       -       " if r.ci_low is None else f"[{_pct(r.ci_low)},{_pct(r.ci_high)}]"
            lines.append(f"  {window:<31} {r.model_version:>7} {r.explore_seed:>12} {r.impressions:>7} "
                         f"{r.explore_wins:>7} {r.current_wins:>7} {_pct(r.win_rate):>8} {ci:>15}  {r.decision}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_json(views: Sequence[ModelView], newest_event_time: int | None) -> dict[str, Any]:
    return {"newest_event_time": newest_event_time, "models": [asdict(v) for v in views]}
