"""DRN's survival model of user activeness (models/activeness.py) against hand-computed values."""

from __future__ import annotations

import math

import pytest

from models.activeness import DAY_MS, ActivenessConfig, activeness_rewards, survival_after_requests

H = 3600 * 1000
CFG = ActivenessConfig()


def test_defaults_are_drns_constants() -> None:
    assert (CFG.hazard_per_s, CFG.s0, CFG.sa, CFG.cap, CFG.horizon_ms) == (1.2e-5, 0.5, 0.32, 1.0, DAY_MS)


def test_survival_decays_and_each_return_adds_sa() -> None:
    s = survival_after_requests([0, 1 * H, 3 * H], CFG)
    s1 = 0.5 * math.exp(-1.2e-5 * 3600) + 0.32  # 0.5 * 0.9577180 + 0.32 = 0.7988590
    s2 = min(1.0, s1 * math.exp(-1.2e-5 * 7200) + 0.32)  # 0.798859 * 0.917231 + 0.32 = 1.05... -> 1
    assert s[0] == 0.5
    assert s[1] == pytest.approx(0.7988599, abs=1e-6)
    assert s[1] == pytest.approx(s1, rel=1e-12)
    assert s2 == 1.0 and s[2] == 1.0  # capped at 1


def test_absence_longer_than_t0_starts_a_new_life_at_s0() -> None:
    s = survival_after_requests([0, 10 * 1000, 10 * 1000 + DAY_MS + 1], CFG)
    assert s[1] == pytest.approx(0.5 * math.exp(-1.2e-5 * 10) + 0.32)
    assert s[2] == 0.5


def test_reward_is_survival_after_the_return_or_decayed_at_the_horizon() -> None:
    times = [0, 2 * H, 2 * H + 2 * DAY_MS]
    r = activeness_rewards(times, log_end_ms=10 * DAY_MS, cfg=CFG)
    s_after = survival_after_requests(times, CFG)
    assert r[0] == pytest.approx(s_after[1])  # came back within T0: the bumped value
    # next request after more than T0: no return; survival decayed over T0: exp(-1.2e-5 * 86400)
    assert r[1] == pytest.approx(s_after[1] * math.exp(-1.2e-5 * 86400))
    assert r[1] == pytest.approx(0.7786136 * 0.3545875, abs=1e-6)
    assert r[2] == pytest.approx(0.5 * 0.3545875, abs=1e-6)  # last request, log long enough: full horizon


def test_censored_request_decays_only_to_the_end_of_the_log() -> None:
    r = activeness_rewards([0], log_end_ms=1 * H, cfg=CFG)
    assert r[0] == pytest.approx(0.5 * math.exp(-1.2e-5 * 3600))


def test_rejects_unsorted_times_and_bad_config() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        survival_after_requests([5, 1], CFG)
    with pytest.raises(ValueError, match="s0"):
        ActivenessConfig(s0=1.5)
    with pytest.raises(ValueError, match="horizon_ms"):
        ActivenessConfig(horizon_ms=0)
