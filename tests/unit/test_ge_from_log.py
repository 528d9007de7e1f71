"""models/ge/from_log.py: logged impressions and their credited clicks as GE's LoggedLists."""

from __future__ import annotations

import numpy as np
import pytest

from models.ge.from_log import logged_lists


def _imp(rid: str, t: int, version: int = 1, n: int = 3, width: int = 4) -> dict:
    return {"request_id": rid, "event_time": t, "model_id": "drn", "model_version": version,
            "state_features": [0.1, 0.2], "slots": [{"item_id": f"{rid}/{k}", "features": [float(k)] * width}
                                                   for k in range(n)]}


def _click(rid: str, item: str, t: int) -> dict:
    return {"request_id": rid, "item_id": item, "event_time": t}


def q_of(version: int, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
    if version != 1:
        raise KeyError(version)
    return actions[:, 0] * 0.5


def cats(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(len(actions), np.int64), np.arange(len(actions), dtype=np.int64) % 2


def test_credited_clicks_become_position_flags_and_the_rest_is_counted_as_skipped() -> None:
    imps = [_imp("b", 200), _imp("a", 100), _imp("a", 150), _imp("c", 300, version=7), _imp("d", 400, n=2)]
    clicks = [_click("a", "a/2", 120), _click("a", "a/2", 130), _click("b", "b/0", 200 + 31 * 60_000),
              _click("b", "b/1", 250), _click("x", "x/0", 10)]
    out = logged_lists(imps, clicks, q_of, cats, attribution_window_ms=30 * 60_000)
    lists = out.lists
    assert lists.requests.request_time.tolist() == [100, 200], "event-time order, first impression per request"
    assert lists.clicks.tolist() == [[0, 0, 1], [0, 1, 0]], "a duplicate and a click outside the window count not"
    assert lists.shown.tolist() == [[0, 1, 2]] * 2 and lists.requests.candidates.shape == (2, 3)
    assert np.allclose(lists.requests.ranker_score[0], [0.0, 0.5, 1.0]), "Q of the version that served it"
    assert lists.requests.item_type[0].tolist() == [0, 1, 0]
    assert out.skipped == {"a second impression of its request_id": 1,
                           "the version that served it is not on model-weights": 1, "list length is not 3": 1}


def test_nothing_usable_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="no logged impression with features"):
        logged_lists([{**_imp("a", 1), "state_features": []}], [], q_of, cats, 1000)
    with pytest.raises(ValueError, match="none of the 1 logged impressions can be used"):
        logged_lists([_imp("a", 1, version=9)], [], q_of, cats, 1000)
