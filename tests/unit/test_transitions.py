"""Transitions from the log alone (models/transitions.py): attribution, next state, rewards, skips."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.activeness import ActivenessConfig, activeness_rewards
from models.transitions import (
    BAD_DIMS,
    DUPLICATE,
    DUPLICATE_IMPRESSION,
    ITEM_NOT_SHOWN,
    NO_FEATURES,
    OUTSIDE_WINDOW,
    UNKNOWN_REQUEST,
    EmptyRange,
    TransitionConfig,
    build_transitions,
)

MIN = 60_000
DS, DA = 3, 2


def imp(rid: str, user: str, t: int, items: list[str], state: float = 1.0,
        ds: int = DS, da: int = DA) -> dict[str, Any]:
    return {
        "request_id": rid, "user_id": user, "event_time": t, "model_id": "m", "model_version": 1,
        "explore_seed": 0, "state_features": [state] * ds, "explore_seeds": [], "interleaving": "none",
        "generator": None,
        # logged out of position order on purpose: transitions sort slots by position
        "slots": [{"item_id": it, "position": p, "team": "CURRENT", "features": [float(p)] * da,
                   "explore_seed": None} for p, it in reversed(list(enumerate(items)))],
    }


def click(rid: str, item: str, t: int) -> dict[str, Any]:
    return {"request_id": rid, "item_id": item, "event_time": t, "user_id": None}


def test_next_state_is_the_same_users_next_request_and_rewards_follow_drn() -> None:
    imps = [imp("a1", "ua", 0, ["x", "y"], 1.0), imp("b1", "ub", 1 * MIN, ["x", "z", "w"], 2.0),
            imp("a2", "ua", 10 * MIN, ["y", "z"], 3.0)]
    clicks = [click("a1", "y", 1 * MIN), click("a2", "y", 11 * MIN)]
    ts = build_transitions(imps, clicks, log_end_ms=60 * MIN)
    assert ts.request_ids == ["a1", "b1", "a2"]
    assert ts.n_impressions == 3 and ts.n_transitions == 7
    assert ts.mask.tolist() == [[True, True, False], [True, True, True], [True, True, False]]
    assert ts.next_index.tolist() == [2, -1, -1]
    np.testing.assert_array_equal(ts.states[:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ts.actions[1, :, 0], [0.0, 1.0, 2.0])  # slots in position order
    assert ts.clicks.tolist() == [[False, True, False], [False, False, False], [True, False, False]]
    act = activeness_rewards([0, 10 * MIN], 60 * MIN, ActivenessConfig())
    assert ts.activeness[0] == pytest.approx(act[0]) and ts.activeness[2] == pytest.approx(act[1])
    r = ts.rewards()
    assert r[0, 1] == pytest.approx(1.0 + 0.05 * act[0])
    assert r[0, 0] == pytest.approx(0.05 * act[0])
    assert r[0, 2] == 0.0  # padding


def test_clicks_follow_the_attribution_rules() -> None:
    imps = [imp("r", "u", 0, ["x", "y"])]
    clicks = [click("r", "x", 5 * MIN), click("r", "x", 6 * MIN), click("r", "q", 1 * MIN),
              click("nope", "x", 1 * MIN), click("r", "y", 31 * MIN)]
    ts = build_transitions(imps, clicks, log_end_ms=60 * MIN)
    assert ts.clicks.tolist() == [[True, False]]
    assert ts.skipped == {DUPLICATE: 1, ITEM_NOT_SHOWN: 1, UNKNOWN_REQUEST: 1, OUTSIDE_WINDOW: 1}


def test_a_gap_longer_than_t0_is_terminal() -> None:
    day = 24 * 60 * MIN
    ts = build_transitions([imp("a", "u", 0, ["x"]), imp("b", "u", day + 1, ["x"])], [], log_end_ms=3 * day)
    assert ts.next_index.tolist() == [-1, -1]


def test_unusable_impressions_are_counted_not_trained_on() -> None:
    no_feat = imp("nf", "u", 0, ["x"])
    no_feat["state_features"] = []
    imps = [imp("ok", "u", 0, ["x"]), imp("ok", "u", 1, ["y"]), no_feat, imp("dims", "u", 2, ["x"], da=5)]
    ts = build_transitions(imps, [], log_end_ms=MIN)
    assert ts.request_ids == ["ok"]
    assert ts.skipped == {DUPLICATE_IMPRESSION: 1, NO_FEATURES: 1, BAD_DIMS: 1}


def test_empty_range_says_why() -> None:
    with pytest.raises(EmptyRange, match="0 read"):
        build_transitions([], [], log_end_ms=0)
    no_feat = imp("nf", "u", 0, ["x"])
    no_feat["slots"][0]["features"] = []
    with pytest.raises(EmptyRange, match="1 NO_FEATURES"):
        build_transitions([no_feat], [], log_end_ms=0)


def test_split_and_pairs() -> None:
    ts = build_transitions([imp(f"r{i}", "u", i * MIN, ["x", "y"]) for i in range(5)], [], log_end_ms=9 * MIN)
    train, test = ts.split_at(3 * MIN)
    assert train.tolist() == [0, 1, 2] and test.tolist() == [3, 4]
    assert ts.pairs(test).tolist() == [[3, 0], [3, 1], [4, 0], [4, 1]]
    assert ts.nbytes() > ts.actions.nbytes


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="beta"):
        TransitionConfig(beta=-1)
