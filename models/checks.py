"""Check suites, river style: one function that every implementation of a role must pass.

`check_ranking_policy` holds any object with the `rank(request_id, user_id, event_time, state_features,
candidates, k)` signature (the DRN ranker, the GE re-ranker, random/popular/oracle, greedy) to what the
minor-update job and the major update rely on. `check_learner` holds a DBGD-style learner to the state
rules of the minor-update job's keyed state. Each raises AssertionError naming the broken rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from schemas import serde


class RankingPolicy(Protocol):
    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]: ...


def check_ranking_policy(
    make_policy: Callable[[], RankingPolicy],
    state_features: npt.ArrayLike,
    candidates: Sequence[tuple[str, npt.ArrayLike]],
    user_id: str,
    k: int = 10,
    shown: int | None = None,
) -> None:
    """A policy's Impression is schema-valid, echoes the request, shows `shown` (default min(k, M)) distinct
    candidates at positions 0..n-1 with the features they were scored with, and depends only on the
    request (a second instance built the same way, and a second call, give the same record)."""
    policy = make_policy()
    record = policy.rank("check-r1", user_id, 1_700_000_000_000, state_features, candidates, k)
    serde.encode("Impression", record)  # raises on a record the schema does not allow
    assert (record["request_id"], record["user_id"], record["event_time"]) == (
        "check-r1", user_id, 1_700_000_000_000), "the Impression must echo request_id, user_id and event_time"
    slots = record["slots"]
    expected = min(k, len(candidates)) if shown is None else shown
    assert len(slots) == expected, f"{len(slots)} slots shown, expected {expected}"
    assert [s["position"] for s in slots] == list(range(len(slots))), "positions must be 0..n-1 in order"
    items = [s["item_id"] for s in slots]
    assert len(set(items)) == len(items), f"an item is shown twice: {items}"
    features = {item: np.asarray(f, dtype=np.float32).tolist() for item, f in candidates}
    for s in slots:
        assert s["item_id"] in features, f"{s['item_id']!r} is not a candidate"
        assert s["features"] == features[s["item_id"]], f"slot {s['position']} does not log its features"
        assert s["team"] in ("CURRENT", "EXPLORE")
    explore_seeds = record.get("explore_seeds") or []
    assert not explore_seeds or record["explore_seed"] == explore_seeds[0], "explore_seed is the first seed"
    again = policy.rank("check-r1", user_id, 1_700_000_000_000, state_features, candidates, k)
    assert again == record, "ranking the same request twice gave two records"
    fresh = make_policy().rank("check-r1", user_id, 1_700_000_000_000, state_features, candidates, k)
    assert fresh == record, "two policies built the same way ranked one request differently (unseeded?)"


class Learner(Protocol):
    @property
    def version(self) -> int | None: ...

    def rebase(self, record: Mapping[str, Any]) -> bool: ...

    def on_window(self, rows: Sequence[Mapping[str, Any]]) -> Any: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...

    def weights(self, version: int | None = None) -> npt.NDArray[np.float32]: ...


def check_learner(
    make_learner: Callable[[], Learner],
    major: Mapping[str, Any],
    window_rows: Callable[[int, int, bool], list[dict[str, Any]]],
    windows: int = 4,
) -> None:
    """A learner rebased on `major` moves its weights only on a window with an accepted row, gives the
    same weights for the same windows (seeded), and a snapshot restored into a fresh learner continues
    exactly where the original does. `window_rows(window, version, explore_wins)` builds one window's rows
    for the learner's current version (explore winning or losing)."""
    a, b = make_learner(), make_learner()
    assert a.rebase(major) and b.rebase(major), "a learner must adopt a MAJOR"
    for w in range(windows):
        win = w % 2 == 0
        before = a.weights().copy()
        version = a.version
        assert version is not None
        out_a = a.on_window(window_rows(w, version, win))
        out_b = b.on_window(window_rows(w, version, win))
        moved = not np.array_equal(before, a.weights())
        assert moved == win, f"window {w}: weights {'did not move' if win else 'moved'} with explore " \
                             f"{'winning' if win else 'losing'}"
        assert (out_a.weights is None) == (not win), f"window {w}: a MINOR exactly when a row is accepted"
        assert np.array_equal(a.weights(), b.weights()), f"window {w}: two learners disagree (unseeded?)"
        if out_a.weights is not None:
            assert serde.encode("ModelWeights", out_a.weights) == serde.encode("ModelWeights", out_b.weights), \
                f"window {w}: the MINOR records differ byte for byte"
    restored = make_learner()
    restored.restore(a.snapshot())
    assert restored.snapshot() == a.snapshot(), "snapshot -> restore -> snapshot must round-trip byte for byte"
    assert restored.version == a.version
    version = a.version
    assert version is not None
    a.on_window(window_rows(windows, version, True))
    restored.on_window(window_rows(windows, version, True))
    assert np.array_equal(a.weights(), restored.weights()), "a restored learner must continue identically"
