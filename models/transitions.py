"""Training transitions of the major update, from the logged impressions and clicks alone.

One transition per shown slot: (state s, action a = the slot's logged features, reward r, next state s')
with r = click + β·activeness (models/activeness.py) and s' the same user's next request (its
logged state and its shown slots as the next candidate set), or terminal when the user did not come
back within T0 inside the log. Arrays are kept per impression (the slots of one list share a state,
a next state and an activeness), so a million transitions cost about K·Da floats each plus little more.

Clicks join impressions by the attribution rules of design.md §4 (models/attribution.py: the first
impression per request in read order, item shown, inside the attribution window, first click per
item). Records that cannot be used are counted by reason, never silently dropped.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models.activeness import ActivenessConfig, activeness_rewards
from models.attribution import attribute_clicks, index_impressions
from schemas.reasons import DUPLICATE, DUPLICATE_IMPRESSION, ITEM_NOT_SHOWN, OUTSIDE_WINDOW, UNKNOWN_REQUEST

ATTRIBUTION_WINDOW_MS = 30 * 60 * 1000

#: Reasons an impression cannot become transitions.
NO_FEATURES = "NO_FEATURES"  # logged without state or action features: cannot retrain from the log
BAD_DIMS = "BAD_DIMS"  # feature lengths differ from the rest of the range
BAD_SLOTS = "BAD_SLOTS"  # positions not 0..k-1, repeated items, or no slot at all
NOT_FINITE = "NOT_FINITE"
#: Reasons a click or a second impression is not used: the dead-letter codes of design.md §4.
__all__ = [
    "BAD_DIMS", "BAD_SLOTS", "DUPLICATE", "DUPLICATE_IMPRESSION", "ITEM_NOT_SHOWN", "NOT_FINITE", "NO_FEATURES",
    "OUTSIDE_WINDOW", "UNKNOWN_REQUEST", "EmptyRange", "TransitionConfig", "TransitionSet", "build_transitions",
]


@dataclass(frozen=True)
class TransitionConfig:
    """β of the reward, the attribution window and the survival model."""

    beta: float = 0.05
    attribution_window_ms: int = ATTRIBUTION_WINDOW_MS
    activeness: ActivenessConfig = field(default_factory=ActivenessConfig)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"TransitionConfig.beta must be finite and >= 0, got {self.beta}")
        if self.attribution_window_ms < 0:
            raise ValueError(
                f"TransitionConfig.attribution_window_ms must be >= 0, got {self.attribution_window_ms}"
            )


@dataclass
class TransitionSet:
    """Per-impression arrays, sorted by (event_time, request_id); the transitions are the (i, j) with
    mask[i, j]. `next_index[i]` is the row of the same user's next request, -1 when terminal."""

    request_ids: list[str]
    user_ids: list[str]
    event_time: npt.NDArray[np.int64]  # [n]
    states: npt.NDArray[np.float32]  # [n, Ds]
    actions: npt.NDArray[np.float32]  # [n, K, Da], zero-padded
    mask: npt.NDArray[np.bool_]  # [n, K] real slots
    clicks: npt.NDArray[np.bool_]  # [n, K]
    activeness: npt.NDArray[np.float32]  # [n]
    next_index: npt.NDArray[np.int64]  # [n]
    beta: float
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def n_impressions(self) -> int:
        return int(self.event_time.size)

    @property
    def n_transitions(self) -> int:
        return int(self.mask.sum())

    @property
    def state_dim(self) -> int:
        return int(self.states.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[2])

    def rewards(self) -> npt.NDArray[np.float32]:
        """r[i, j] = click + β·activeness[i] on real slots, 0 on padding."""
        r = self.clicks.astype(np.float32) + np.float32(self.beta) * self.activeness[:, None]
        return np.where(self.mask, r, np.float32(0.0)).astype(np.float32)

    def nbytes(self) -> int:
        """Bytes of the numeric arrays (what training holds in memory; ids excluded)."""
        arrays = (self.event_time, self.states, self.actions, self.mask, self.clicks, self.activeness,
                  self.next_index)
        return int(sum(a.nbytes for a in arrays))

    def split_at(self, time_ms: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Row indices before / from `time_ms` (a time split; next states may cross it)."""
        cut = int(np.searchsorted(self.event_time, int(time_ms), side="left"))
        return np.arange(cut, dtype=np.int64), np.arange(cut, self.n_impressions, dtype=np.int64)

    def pairs(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """[T, 2] (row, slot) of every transition of `rows`."""
        sub = self.mask[rows]
        r, s = np.nonzero(sub)
        return np.stack([rows[r], s], axis=1).astype(np.int64)


class EmptyRange(ValueError):
    """No usable impression in the range: nothing to train on."""


def _features(rec: Mapping[str, Any]) -> tuple[list[float], list[dict[str, Any]]] | str:
    """(state, slots sorted by position) of an impression, or the reason it cannot be used."""
    slots = list(rec.get("slots") or [])
    state = list(rec.get("state_features") or [])
    if not slots:
        return BAD_SLOTS
    if not state or any(not s.get("features") for s in slots):
        return NO_FEATURES
    slots.sort(key=lambda s: int(s["position"]))
    if [int(s["position"]) for s in slots] != list(range(len(slots))):
        return BAD_SLOTS
    if len({s["item_id"] for s in slots}) != len(slots):
        return BAD_SLOTS
    return state, slots


def build_transitions(
    impressions: Iterable[Mapping[str, Any]],
    clicks: Iterable[Mapping[str, Any]],
    log_end_ms: int,
    config: TransitionConfig | None = None,
) -> TransitionSet:
    """Transitions of decoded Impression and Click records (schemas/*.avsc) of one range.

    `log_end_ms` (exclusive) censors the activeness of the last requests (models/activeness.py).
    Raises EmptyRange when no impression is usable; the message says why.
    """
    cfg = config or TransitionConfig()
    skipped: Counter[str] = Counter()
    records = list(impressions)
    index = index_impressions(str(rec["request_id"]) for rec in records)
    skipped[DUPLICATE_IMPRESSION] += len(index.duplicates)
    kept: dict[str, tuple[Mapping[str, Any], list[float], list[dict[str, Any]]]] = {}
    dims: tuple[int, int] | None = None
    seen = len(records)
    for rid, position in index.first.items():
        rec = records[position]
        parsed = _features(rec)
        if isinstance(parsed, str):
            skipped[parsed] += 1
            continue
        state, slots = parsed
        da = {len(s["features"]) for s in slots}
        if len(da) != 1:
            skipped[BAD_DIMS] += 1
            continue
        these = (len(state), da.pop())
        if dims is None:
            dims = these
        elif these != dims:
            skipped[BAD_DIMS] += 1
            continue
        kept[rid] = (rec, state, slots)
    skipped = +skipped
    if not kept:
        why = ", ".join(f"{n} {r}" for r, n in sorted(skipped.items())) or "none was read"
        raise EmptyRange(f"no usable impression in the range ({seen} read; skipped: {why})")
    assert dims is not None
    ds, da_ = dims
    order = sorted(kept, key=lambda r: (int(kept[r][0]["event_time"]), r))
    row_of = {rid: i for i, rid in enumerate(order)}
    n, k = len(order), max(len(kept[r][2]) for r in order)
    states = np.zeros((n, ds), dtype=np.float32)
    actions = np.zeros((n, k, da_), dtype=np.float32)
    mask = np.zeros((n, k), dtype=bool)
    event_time = np.empty(n, dtype=np.int64)
    users: list[str] = []
    slot_of: list[dict[str, int]] = []
    for i, rid in enumerate(order):
        rec, state, slots = kept[rid]
        states[i] = state
        actions[i, : len(slots)] = [s["features"] for s in slots]
        mask[i, : len(slots)] = True
        event_time[i] = int(rec["event_time"])
        users.append(str(rec["user_id"]))
        slot_of.append({str(s["item_id"]): j for j, s in enumerate(slots)})
    finite = np.isfinite(states).all(axis=1) & np.isfinite(actions).all(axis=(1, 2))
    clicked = np.zeros((n, k), dtype=bool)
    attributed = attribute_clicks({rid: kept[rid][0] for rid in order}, list(clicks), cfg.attribution_window_ms)
    skipped.update(r.reason for r in attributed.refused)
    for rid, items in attributed.credited.items():
        row = row_of[rid]
        for item in items:
            clicked[row, slot_of[row][item]] = True
    if not finite.all():
        skipped[NOT_FINITE] += int((~finite).sum())
        rows = np.flatnonzero(finite)
        if rows.size == 0:
            raise EmptyRange(f"no usable impression in the range: all {n} have non-finite features")
        states, actions, mask, clicked, event_time = (
            states[rows], actions[rows], mask[rows], clicked[rows], event_time[rows]
        )
        order = [order[int(r)] for r in rows]
        users = [users[int(r)] for r in rows]
        n = len(order)
    activeness, next_index = _user_sequences(users, event_time, log_end_ms, cfg)
    return TransitionSet(order, users, event_time, states, actions, mask, clicked,
                         activeness, next_index, cfg.beta, skipped)


def _user_sequences(
    users: list[str], event_time: npt.NDArray[np.int64], log_end_ms: int, cfg: TransitionConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Activeness reward and next-request row per row (rows already in time order)."""
    by_user: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(users):
        by_user[u].append(i)
    act = np.zeros(len(users), dtype=np.float32)
    nxt = np.full(len(users), -1, dtype=np.int64)
    horizon = cfg.activeness.horizon_ms
    for rows in by_user.values():
        times = [int(event_time[i]) for i in rows]
        act[rows] = activeness_rewards(times, log_end_ms, cfg.activeness)
        for a, b in itertools.pairwise(rows):
            if event_time[b] - event_time[a] <= horizon:
                nxt[a] = b
    return act, nxt
