"""drnflow monitor's pure parts: the Wilson interval, per-model views, lineage, lag, table and JSON."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drnflow.tools.monitor import build_views, format_lineage, format_table, to_json, wilson_interval

T0 = 1_700_000_000_000
W = 60_000


def win_rate(model: str, k: int, e: int, c: int, version: int = 1, seed: int = 7, decision: str = "ACCEPT") -> dict:
    return {"model_id": model, "window_start": T0 + k * W, "window_end": T0 + (k + 1) * W, "model_version": version,
            "explore_seed": seed, "impressions": e + c + 3, "explore_wins": e, "current_wins": c, "ties": 1,
            "no_clicks": 2, "win_rate": e / (e + c) if e + c else None, "decision": decision}


def weights(model: str, version: int, parent: int | None, kind: str, k: int | None = None) -> dict:
    return {"model_id": model, "version": version, "parent_version": parent, "kind": kind, "created_at": T0,
            "window_start": None if k is None else T0 + k * W, "window_end": None if k is None else T0 + (k + 1) * W,
            "explore_seeds": [], "checksum": "x"}


def test_wilson_interval_matches_hand_computed_values() -> None:
    # p = 0.5, n = 10: centre 0.5, half-width z*sqrt(0.025 + z^2/400)/(1 + z^2/10) = 0.26338...
    lo, hi = wilson_interval(5, 10)  # type: ignore[misc]
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)  # type: ignore[misc]
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)  # type: ignore[misc]
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == pytest.approx(1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="wins <= n"):
        wilson_interval(3, 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_interval_contains_the_estimate_and_stays_in_unit_range(wins: int, extra: int) -> None:
    n = wins + extra
    lo, hi = wilson_interval(wins, n)  # type: ignore[misc]
    assert 0.0 <= lo <= wins / n <= hi <= 1.0
    # Four times the data halves the width, roughly: it must at least shrink.
    lo4, hi4 = wilson_interval(4 * wins, 4 * n)  # type: ignore[misc]
    assert hi4 - lo4 < hi - lo


def test_views_keep_last_windows_per_model_with_all_their_rows() -> None:
    rates = [win_rate("m1", k, 6, 2) for k in range(8)] + [win_rate("m1", 7, 1, 5, seed=8, decision="REJECT")]
    rates += [win_rate("m2", 0, 0, 0, decision="REJECT")]
    views = build_views(rates, [], newest_event_time=T0 + 10 * W, last_windows=3)
    assert [v.model_id for v in views] == ["m1", "m2"]
    m1, m2 = views
    assert sorted({r.window_start for r in m1.windows}) == [T0 + k * W for k in (5, 6, 7)]
    assert len(m1.windows) == 4 and m1.total_windows == 8
    assert m1.lag_ms == 2 * W, "newest event at window 10's start, last window ended at 8"
    row = m1.windows[-1]
    assert (row.explore_seed, row.decision, row.ci_low) == (8, "REJECT", wilson_interval(1, 6)[0])  # type: ignore[index]
    assert m2.windows[0].ci_low is None and m2.windows[0].win_rate is None


def test_lineage_follows_parents_from_the_newest_version() -> None:
    ws = [weights("m1", 1, None, "MAJOR"), weights("m1", 2, 1, "MINOR", 0), weights("m1", 3, 2, "MINOR", 1),
          weights("m1", 4, 2, "ROLLBACK"), weights("m1", 5, 4, "MINOR", 3)]
    (view,) = build_views([], ws, newest_event_time=None)
    assert [v.version for v in view.lineage] == [5, 4, 2, 1], "v3 was rolled back: not on the path"
    assert format_lineage(view.lineage) == "v5 ← v4 (ROLLBACK) ← v2 ← v1 (MAJOR)"
    assert view.accepted_updates == 3 and view.lag_ms is None
    short = build_views([], ws, None, lineage_depth=2)[0]
    assert format_lineage(short.lineage) == "v5 ← v4 (ROLLBACK) ← …"


def test_table_and_json_show_the_rows() -> None:
    rates = [win_rate("m1", 0, 6, 2), win_rate("m1", 1, 1, 3, decision="REJECT")]
    ws = [weights("m1", 1, None, "MAJOR"), weights("m1", 2, 1, "MINOR", 0)]
    views = build_views(rates, ws, newest_event_time=T0 + 2 * W + 500)
    text = format_table(views)
    assert "model m1: v2 ← v1 (MAJOR); 1 accepted updates, 2 windows; lag behind newest event 0.5 s" in text
    lines = [ln for ln in text.splitlines() if "2023-11-14T22:1" in ln]
    assert len(lines) == 2 and lines[0].split()[-1] == "ACCEPT" and lines[1].split()[-1] == "REJECT"
    assert " 75.0%" in lines[0] and " 25.0%" in lines[1]
    doc = json.loads(json.dumps(to_json(views, T0)))
    (m1,) = doc["models"]
    assert [w["explore_wins"] for w in m1["windows"]] == [6, 1]
    assert math.isclose(m1["windows"][0]["ci_low"], wilson_interval(6, 8)[0])  # type: ignore[index]
    assert [v["version"] for v in m1["lineage"]] == [2, 1]
    assert format_table([]).startswith("no win-rates or model versions yet; no impressions yet. A window's row")
    assert "newest impression event time 2024-01-01T00:00:00.000Z" in format_table([], 1_704_067_200_000)
    assert "at most 31.0 min of event time after the first impression" in format_table([])


class _FakeCounter:
    def __init__(self) -> None:
        self.n = 0

    def inc(self, n: int = 1) -> None:
        self.n += n

    def dec(self, n: int = 1) -> None:
        self.n -= n


class _FakeGroup:
    """Stands in for PyFlink's MetricGroup: records gauges and counters by dotted name."""

    def __init__(self, registry: dict, prefix: str = "") -> None:
        self.registry, self.prefix = registry, prefix

    def add_group(self, name: str, value: str | None = None) -> _FakeGroup:
        return _FakeGroup(self.registry, f"{self.prefix}{name}{'.' + value if value else ''}.")

    def gauge(self, name: str, fn: object) -> None:
        self.registry[self.prefix + name] = fn

    def counter(self, name: str) -> _FakeCounter:
        self.registry[self.prefix + name] = c = _FakeCounter()
        return c


def test_flink_metrics_follow_the_last_row_and_count_decisions() -> None:
    from operators.flink_metrics import WinRateMetrics

    registry: dict = {}
    metrics = WinRateMetrics(_FakeGroup(registry))
    metrics.record(win_rate("m1", 0, 6, 2))
    metrics.record(win_rate("m1", 1, 1, 3, version=2, decision="REJECT"))
    metrics.record(win_rate("m2", 0, 0, 0, decision="STALE"))
    assert registry["model.m1.win_rate_permille"].n == 250 and registry["model.m1.model_version"].n == 2
    assert registry["model.m2.win_rate_permille"].n == -1
    assert registry["model.m1.window_end"].n == win_rate("m1", 1, 1, 3)["window_end"]
    assert registry["model.m1.decisions.accept"].n == 1 and registry["model.m1.decisions.reject"].n == 1
    assert registry["model.m2.decisions.stale"].n == 1
