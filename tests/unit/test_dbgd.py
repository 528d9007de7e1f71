"""DbgdLearner and DbgdConfig (models/dbgd.py) against design.md §5."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.dbgd import (
    DEFAULT_MAX_STALENESS,
    DbgdConfig,
    DbgdLearner,
    binomial_sf_half,
    default_max_staleness,
)
from models.perturbation import explore_delta
from models.weights import ParamSpec, WeightsError, from_bytes, make_model_weights_record
from schemas import serde

MIN = 60_000
WIN = 30 * MIN
LAYOUT = [ParamSpec("w", (2, 3)), ParamSpec("b", (2,))]
W0 = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.1, -0.2], dtype=np.float32)


def major(version: int, weights: np.ndarray = W0, kind: str = "MAJOR", model_id: str = "m",
          layout: list[ParamSpec] | None = None) -> dict[str, Any]:
    return make_model_weights_record(model_id, version, None, kind, weights, layout or LAYOUT, 0, [])


def row(version: int, seed: int, e: int, c: int, ties: int = 0, none: int = 0, window: int = 0,
        model_id: str = "m") -> dict[str, Any]:
    return {
        "model_id": model_id, "window_start": window * WIN, "window_end": (window + 1) * WIN,
        "model_version": version, "explore_seed": seed, "impressions": e + c + ties + none,
        "explore_wins": e, "current_wins": c, "ties": ties, "no_clicks": none,
    }


def learner(config: DbgdConfig | None = None, version: int = 1) -> DbgdLearner:
    lrn = DbgdLearner("m", config or DbgdConfig())
    assert lrn.rebase(major(version))
    return lrn


def advance(lrn: DbgdLearner, windows: int, first_window: int = 0) -> None:
    """Publish one MINOR per window by an accepted row on the current version."""
    for k in range(windows):
        assert lrn.version is not None
        res = lrn.on_window([row(lrn.version, 1000 + k, 5, 1, window=first_window + k)])
        assert res.weights is not None


def decisions(res: Any) -> list[tuple[int, int, str]]:
    return [(r["model_version"], r["explore_seed"], r["decision"]) for r in res.win_rates]


# --- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"eta": 0.0}, "eta"), ({"eta": math.inf}, "eta"), ({"alpha": -0.1}, "alpha"),
        ({"perturbation": "gaussian"}, "perturbation must be one of multiplicative, unit_sphere"),
        ({"max_staleness": -1}, "max_staleness"), ({"max_staleness": 1.5}, "max_staleness"),
        ({"min_decided": -2}, "min_decided"), ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"), ({"max_update_norm_ratio": 0.0}, "max_update_norm_ratio"),
        ({"max_update_norm_ratio": math.nan}, "max_update_norm_ratio"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        DbgdConfig(**kwargs)


def test_default_max_staleness_covers_one_attribution_window_of_windows() -> None:
    assert DEFAULT_MAX_STALENESS == 2 == DbgdConfig().max_staleness
    assert default_max_staleness(30 * MIN, 30 * MIN) == 2
    assert default_max_staleness(30 * MIN, 45 * MIN) == 3
    assert default_max_staleness(MIN, 30 * MIN) == 31
    assert default_max_staleness(30 * MIN, 0) == 1
    assert DbgdConfig.for_windows(10 * MIN, 30 * MIN).max_staleness == 4
    assert DbgdConfig.for_windows(10 * MIN, 30 * MIN, max_staleness=0).max_staleness == 0
    with pytest.raises(ValueError, match="window must be > 0"):
        default_max_staleness(0, 30 * MIN)


def test_perturbation_accepts_enum_value_strings() -> None:
    assert DbgdConfig(perturbation="unit_sphere").perturbation == "unit_sphere"


# --- binomial test -------------------------------------------------------------------------------
def test_binomial_sf_matches_exact_sums() -> None:
    for n in range(0, 41):
        for k in range(0, n + 2):
            exact = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
            assert binomial_sf_half(k, n) == pytest.approx(exact, rel=1e-9, abs=1e-15), (k, n)
    n, k = 2000, 1060
    exact = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    assert binomial_sf_half(k, n) == pytest.approx(exact, rel=1e-9)


# --- decisions -----------------------------------------------------------------------------------
def test_accept_moves_weights_by_eta_times_delta_and_publishes_a_minor() -> None:
    cfg = DbgdConfig(eta=0.5, alpha=0.1)
    lrn = learner(cfg, version=1)
    res = lrn.on_window([row(1, 7, e=3, c=1, ties=2, none=4, window=5)])
    assert res.refused is None
    assert res.win_rates == [{
        "model_id": "m", "window_start": 5 * WIN, "window_end": 6 * WIN,
        "model_version": 1, "explore_seed": 7,
        "impressions": 10, "explore_wins": 3, "current_wins": 1, "ties": 2, "no_clicks": 4,
        "win_rate": 0.75, "decision": "ACCEPT",
    }]
    rec = res.weights
    assert rec is not None
    expected = (W0.astype(np.float64) + 0.5 * explore_delta(W0, 7, 0.1).astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(from_bytes(rec["weights"]), expected)
    assert rec["weights"] == expected.astype("<f4").tobytes()
    assert rec["checksum"] == hashlib.sha256(rec["weights"]).hexdigest()
    assert (rec["model_id"], rec["version"], rec["parent_version"], rec["kind"]) == ("m", 2, 1, "MINOR")
    assert (rec["window_start"], rec["window_end"], rec["created_at"]) == (5 * WIN, 6 * WIN, 6 * WIN)
    assert rec["explore_seeds"] == [7]
    assert rec["layout"] == [{"name": "w", "shape": [2, 3]}, {"name": "b", "shape": [2]}]
    assert (lrn.version, lrn.next_version, lrn.minor_count) == (2, 3, 1)
    np.testing.assert_array_equal(lrn.weights(), expected)


@pytest.mark.parametrize(("e", "c", "win_rate"), [(2, 2, 0.5), (1, 3, 0.25), (0, 0, None)])
def test_reject_when_explore_does_not_win(e: int, c: int, win_rate: float | None) -> None:
    lrn = learner()
    res = lrn.on_window([row(1, 7, e, c, ties=1, none=2)])
    assert decisions(res) == [(1, 7, "REJECT")]
    assert res.win_rates[0]["win_rate"] == win_rate
    assert res.weights is None and res.refused is None
    assert lrn.version == 1 and lrn.minor_count == 0


def test_mean_over_accepted_rows_uses_each_rows_base_version() -> None:
    cfg = DbgdConfig(eta=0.5, alpha=0.2, max_staleness=2)
    lrn = learner(cfg, version=1)
    advance(lrn, 2)  # versions 2 and 3
    w1, w2, w3 = lrn.weights(1), lrn.weights(2), lrn.weights(3)
    res = lrn.on_window([row(1, 11, 4, 1, window=9), row(2, 12, 1, 4, window=9), row(3, 13, 6, 2, window=9),
                         row(2, 14, 3, 2, window=9)])
    assert decisions(res) == [(1, 11, "ACCEPT"), (2, 12, "REJECT"), (2, 14, "ACCEPT"), (3, 13, "ACCEPT")]
    deltas = [explore_delta(w1, 11, 0.2), explore_delta(w2, 14, 0.2), explore_delta(w3, 13, 0.2)]
    mean = np.mean(np.stack(deltas).astype(np.float64), axis=0)
    expected = (w3.astype(np.float64) + 0.5 * mean).astype(np.float32)
    assert res.weights is not None
    np.testing.assert_allclose(from_bytes(res.weights["weights"]), expected, rtol=1e-6, atol=1e-7)
    assert res.weights["explore_seeds"] == [11, 14, 13]
    assert (res.weights["version"], res.weights["parent_version"]) == (4, 3)


def test_staleness_rule_and_unknown_versions() -> None:
    lrn = learner(DbgdConfig(max_staleness=2), version=1)
    advance(lrn, 3)  # now at v4, history keeps v2..v4
    assert lrn.version == 4 and lrn.history_versions == [2, 3, 4]
    res = lrn.on_window([row(v, 50 + v, 1, 3, window=20) for v in (0, 1, 2, 3, 4, 5, 99)])
    assert decisions(res) == [(0, 50, "STALE"), (1, 51, "STALE"), (2, 52, "REJECT"), (3, 53, "REJECT"),
                              (4, 54, "REJECT"), (5, 55, "STALE"), (99, 149, "STALE")]
    whys = {v: why for v, _, why in res.stale_reasons}
    assert "3 versions behind v4" in whys[1] and "newer" in whys[5]
    # A MAJOR that jumps versions: v8 and v9 were never held, so they are STALE although within 2.
    assert lrn.rebase(major(10))
    res = lrn.on_window([row(v, 1, 5, 0, window=21) for v in (4, 8, 9, 10)])
    assert decisions(res) == [(4, 1, "STALE"), (8, 1, "STALE"), (9, 1, "STALE"), (10, 1, "ACCEPT")]
    assert "unknown" in dict(((v, w) for v, _, w in res.stale_reasons))[9]


def test_uninitialised_learner_marks_everything_stale_without_crashing() -> None:
    lrn = DbgdLearner("m")
    res = lrn.on_window([row(1, 1, 9, 0), row(2, 2, 0, 0)])
    assert [r["decision"] for r in res.win_rates] == ["STALE", "STALE"]
    assert res.weights is None and lrn.version is None
    assert "no weights yet" in res.stale_reasons[0][2]


def test_a_late_window_is_stale_and_leaves_the_weights_and_versions_alone() -> None:
    lrn = learner(version=1)
    before = lrn.snapshot()
    res = lrn.on_late_window([row(1, 7, e=9, c=0, window=2), row(1, 8, e=5, c=1, window=2)], "arrived late")
    assert decisions(res) == [(1, 7, "STALE"), (1, 8, "STALE")]
    assert res.weights is None
    assert res.stale_reasons == [(1, 7, "arrived late"), (1, 8, "arrived late")]
    assert lrn.snapshot() == before
    assert lrn.on_late_window([], "nothing").win_rates == []


def test_min_decided_and_confidence() -> None:
    lrn = learner(DbgdConfig(min_decided=5))
    assert decisions(lrn.on_window([row(1, 1, 3, 1)])) == [(1, 1, "REJECT")]
    assert decisions(lrn.on_window([row(1, 1, 4, 1, window=1)])) == [(1, 1, "ACCEPT")]
    # P(X >= 8 | n=10, p=1/2) = 56/1024 = 0.0547: significant at 90 %, not at 95 %.
    assert decisions(learner(DbgdConfig(confidence=0.95)).on_window([row(1, 1, 8, 2)])) == [(1, 1, "REJECT")]
    assert decisions(learner(DbgdConfig(confidence=0.90)).on_window([row(1, 1, 8, 2)])) == [(1, 1, "ACCEPT")]


def test_unit_sphere_step_has_norm_eta_alpha() -> None:
    lrn = learner(DbgdConfig(eta=0.5, alpha=0.1, perturbation="unit_sphere"))
    res = lrn.on_window([row(1, 3, 2, 1)])
    assert res.weights is not None
    step = from_bytes(res.weights["weights"]).astype(np.float64) - W0
    assert float(np.linalg.norm(step)) == pytest.approx(0.05, rel=1e-5)


# --- guards --------------------------------------------------------------------------------------
def test_exploding_update_is_refused_and_rows_still_emitted() -> None:
    lrn = learner(DbgdConfig(eta=50.0, alpha=0.5, max_update_norm_ratio=1.0))
    res = lrn.on_window([row(1, 7, 3, 0)])
    assert decisions(res) == [(1, 7, "ACCEPT")]
    assert res.weights is None
    assert res.refused is not None and "max_update_norm_ratio" in res.refused
    assert lrn.version == 1 and lrn.minor_count == 0
    np.testing.assert_array_equal(lrn.weights(), W0)


def test_non_finite_update_is_refused() -> None:
    huge = np.full(8, 3.0e38, dtype=np.float32)
    lrn = DbgdLearner("m", DbgdConfig(eta=100.0, alpha=0.9, max_update_norm_ratio=math.inf))
    lrn.rebase(major(1, huge))
    res = lrn.on_window([row(1, 7, 3, 0)])
    assert res.weights is None and res.refused is not None and "non-finite" in res.refused
    np.testing.assert_array_equal(lrn.weights(), huge)


# --- rebase --------------------------------------------------------------------------------------
def test_rebase_rules() -> None:
    lrn = learner(version=3)
    advance(lrn, 2)
    assert (lrn.version, lrn.minor_count) == (5, 2)
    assert not lrn.rebase(major(9, kind="MINOR"))  # own output read back
    assert not lrn.rebase(major(4))  # not newer: replay or duplicate
    assert lrn.version == 5
    assert lrn.rebase(major(6, W0 * 2, kind="ROLLBACK"))
    assert (lrn.version, lrn.minor_count, lrn.next_version) == (6, 2, 7)
    assert lrn.rebase(major(7))
    assert (lrn.version, lrn.minor_count) == (7, 0)
    assert lrn.history_versions == [5, 6, 7]
    other = [ParamSpec("w", (4,))]
    assert lrn.rebase(major(8, np.ones(4, np.float32), layout=other))
    assert lrn.history_versions == [8] and lrn.layout == other
    with pytest.raises(ValueError, match="given to the learner of 'm'"):
        lrn.rebase(major(9, model_id="other"))
    bad = major(9)
    bad["checksum"] = "0" * 64
    with pytest.raises(WeightsError, match="checksum mismatch"):
        lrn.rebase(bad)


# --- input validation ----------------------------------------------------------------------------
def test_bad_rows_raise_clear_errors() -> None:
    lrn = learner()
    broken = row(1, 1, 1, 0)
    del broken["ties"]
    with pytest.raises(ValueError, match="missing field 'ties'"):
        lrn.on_window([broken])
    with pytest.raises(ValueError, match="'explore_wins' must be >= 0"):
        lrn.on_window([{**row(1, 1, 1, 0), "explore_wins": -1}])
    with pytest.raises(ValueError, match="one window at a time"):
        lrn.on_window([row(1, 1, 1, 0, window=0), row(1, 2, 1, 0, window=1)])
    with pytest.raises(ValueError, match="model 'x' given to the learner of 'm'"):
        lrn.on_window([row(1, 1, 1, 0, model_id="x")])
    with pytest.raises(ValueError, match="must be an int"):
        lrn.on_window([{**row(1, 1, 1, 0), "explore_seed": "7"}])
    assert lrn.on_window([]).win_rates == []


def test_history_stays_bounded() -> None:
    lrn = learner(DbgdConfig(max_staleness=3))
    advance(lrn, 20)
    assert lrn.history_versions == [18, 19, 20, 21]


def test_reserved_versions_are_skipped_by_new_minors_and_survive_a_snapshot() -> None:
    lrn = learner(version=1)
    lrn.reserve_versions_through(4)  # v2..v4 are on the topic already (an earlier run's MINORs)
    lrn.reserve_versions_through(2)  # a lower floor never moves it back
    assert (lrn.version, lrn.next_version) == (1, 5)
    res = lrn.on_window([row(1, 7, 3, 1)])
    assert res.weights is not None
    assert (res.weights["version"], res.weights["parent_version"]) == (5, 1)
    again = DbgdLearner("m")
    again.restore(lrn.snapshot())
    assert again.next_version == 6


# --- state and determinism -----------------------------------------------------------------------
def test_snapshot_round_trip_and_determinism() -> None:
    a, b = learner(), learner()
    advance(a, 4)
    advance(b, 4)
    snap = a.snapshot()
    assert snap == b.snapshot()
    c = DbgdLearner("m")
    c.restore(snap)
    assert c.snapshot() == snap
    assert (c.version, c.next_version, c.minor_count, c.history_versions) == (
        a.version, a.next_version, a.minor_count, a.history_versions)
    window = [row(5, 77, 4, 1, window=30), row(4, 78, 3, 1, window=30)]
    ra, rc = a.on_window(window), c.on_window(window)
    assert ra.win_rates == rc.win_rates
    assert ra.weights is not None and rc.weights is not None
    assert serde.encode("ModelWeights", ra.weights) == serde.encode("ModelWeights", rc.weights)
    empty = DbgdLearner("m")
    empty.restore(DbgdLearner("m").snapshot())
    assert empty.version is None


def test_restore_rejects_foreign_or_corrupt_bytes() -> None:
    snap = learner().snapshot()
    with pytest.raises(ValueError, match="bad magic"):
        DbgdLearner("m").restore(b"nope" + snap)
    with pytest.raises(ValueError, match="restored into the learner of 'z'"):
        DbgdLearner("z").restore(snap)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        DbgdLearner("m").restore(snap[:-3])
    with pytest.raises(ValueError, match="trailing bytes"):
        DbgdLearner("m").restore(snap + b"\0")


def test_records_encode_and_replays_are_byte_identical() -> None:
    def run() -> list[tuple[str, bytes]]:
        lrn = learner(DbgdConfig(max_staleness=2))
        out: list[tuple[str, bytes]] = []
        rng = random.Random(5)
        for w in range(6):
            assert lrn.version is not None
            rows = [row(max(1, lrn.version - rng.randint(0, 2)), rng.randint(0, 99), rng.randint(0, 9),
                        rng.randint(0, 9), window=w) for _ in range(3)]
            res = lrn.on_window(rows)
            out += [("WinRate", serde.encode("WinRate", r)) for r in res.win_rates]
            if res.weights is not None:
                out.append(("ModelWeights", serde.encode("ModelWeights", res.weights)))
        return out

    first = run()
    assert first == run()
    published = [serde.decode(name, data) for name, data in first if name == "ModelWeights"]
    assert len(published) >= 2
    assert [p["version"] for p in published] == list(range(2, 2 + len(published)))


# --- properties ----------------------------------------------------------------------------------
row_strategy = st.tuples(
    st.integers(1, 5), st.integers(0, 2**40), st.integers(0, 6), st.integers(0, 6), st.integers(0, 3),
    st.integers(0, 3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row_strategy, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_result(specs: list[tuple[int, ...]], rnd: random.Random) -> None:
    rows = [row(v, s, e, c, t, n, window=40) for v, s, e, c, t, n in specs]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    a, b = learner(DbgdConfig(max_staleness=3)), learner(DbgdConfig(max_staleness=3))
    advance(a, 4)
    advance(b, 4)
    ra, rb = a.on_window(rows), b.on_window(shuffled)
    assert ra.win_rates == rb.win_rates
    assert (ra.weights is None) == (rb.weights is None)
    if ra.weights is not None and rb.weights is not None:
        assert serde.encode("ModelWeights", ra.weights) == serde.encode("ModelWeights", rb.weights)
    assert a.snapshot() == b.snapshot()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4), st.integers(0, 6), st.lists(st.integers(-2, 12), min_size=1, max_size=6))
def test_row_is_stale_iff_lag_exceeds_max_staleness(
    max_staleness: int, windows: int, versions: list[int]
) -> None:
    lrn = learner(DbgdConfig(max_staleness=max_staleness), version=1)
    advance(lrn, windows)  # contiguous versions 1 .. 1 + windows
    current = lrn.version
    assert current == 1 + windows
    res = lrn.on_window([row(v, i, 0, 1, window=50) for i, v in enumerate(versions)])
    for r in res.win_rates:
        lag = current - r["model_version"]
        known = r["model_version"] >= 1
        assert (r["decision"] == "STALE") == (lag < 0 or lag > max_staleness or not known), r


def test_a_row_with_a_negative_explore_seed_is_stale_not_a_crash() -> None:
    lrn = learner()
    res = lrn.on_window([row(1, -5, e=9, c=0)])
    assert decisions(res) == [(1, -5, "STALE")]
    assert res.weights is None
    assert "negative" in res.stale_reasons[0][2]


def test_a_learner_without_state_resumes_from_the_served_minor() -> None:
    """A fresh job (or state it could not restore) on topics where an earlier job published MINORs: staying on
    the MAJOR, every row of the served MINOR would be STALE for ever ("newer than the learner's")."""
    stuck = learner(version=1)
    res = stuck.on_window([row(13, 7, 5, 1)])
    assert decisions(res) == [(13, 7, "STALE")] and "newer" in res.stale_reasons[0][2]
    fresh = learner(version=1)
    served = major(13, W0 * 2, kind="MINOR")
    assert fresh.resume_from(served) and fresh.version == 13 and fresh.minor_count == 0
    assert np.array_equal(fresh.weights(13), W0 * 2)
    res = fresh.on_window([row(13, 7, 5, 1)])
    assert decisions(res) == [(13, 7, "ACCEPT")] and res.weights is not None and res.weights["parent_version"] == 13
    assert not fresh.resume_from(major(5, kind="MINOR")), "an older version is not resumed from"
