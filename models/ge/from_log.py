"""GE's training data from the pipeline's own log (issue 17): the logged Impressions and their credited
Clicks as `LoggedLists`, in the DRN feature space, so the evaluator learns from real exposures and the
generator is trained against it on the requests the DRN traffic served (Taobao's practice).

A logged request keeps only what was shown, so its candidate set is its shown list: M = N, and the
generator re-orders DRN's top N (serve it with `simulate --reranker --top-m N`). Per shown item:
user features = the impression's state, item features = the slot's action features, ranker score = Q of
the DRN version that served the request (as the live re-ranker feeds the generator), shop and type from
the catalog map. Clicks are §4's credited ones (models/attribution.py): one flag per position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models import attribution
from models.ge.environment import LoggedLists, RequestBatch

#: Q of a version's network over one request: (version, state (S,), actions (N, A)) -> (N,).
QOf = Callable[[int, npt.NDArray[np.float32], npt.NDArray[np.float32]], npt.NDArray[np.float32]]
#: shop and type ids of N items from their action features (N, A).
Categories = Callable[[npt.NDArray[np.float32]], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]


@dataclass
class FromLog:
    """The logged lists, and what was left out with a count per reason."""

    lists: LoggedLists
    skipped: dict[str, int] = field(default_factory=dict)


def logged_lists(impressions: Sequence[Mapping[str, Any]], clicks: Sequence[Mapping[str, Any]], q_of: QOf,
                 categories: Categories, attribution_window_ms: int, list_size: int | None = None) -> FromLog:
    """The impressions (one model's, in event-time order) with their credited clicks as LoggedLists.

    Impressions of another list length than the most common (or `list_size`), without features, or whose
    version's network is unknown (q_of raises KeyError) are skipped and counted."""
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    usable = [i for i in impressions if i["slots"] and i["state_features"] and all(s["features"] for s in i["slots"])]
    if len(usable) < len(impressions):
        skipped["no features logged"] = len(impressions) - len(usable)
    if not usable:
        raise ValueError(f"no logged impression with features among {len(impressions)}")
    n = list_size or max({len(i["slots"]) for i in usable}, key=[len(i["slots"]) for i in usable].count)
    first: dict[str, Mapping[str, Any]] = {}  # the first impression of a request_id is the impression (§4)
    for imp in usable:
        if first.setdefault(str(imp["request_id"]), imp) is not imp:
            skip("a second impression of its request_id")
    credited = attribution.attribute_clicks(first, list(clicks), attribution_window_ms, None).credited
    rows: list[dict[str, Any]] = []
    for imp in sorted(first.values(), key=lambda i: (int(i["event_time"]), str(i["request_id"]))):
        if len(imp["slots"]) != n:
            skip(f"list length is not {n}")
            continue
        state = np.asarray(imp["state_features"], dtype=np.float32)
        actions = np.asarray([s["features"] for s in imp["slots"]], dtype=np.float32)
        try:
            q = np.asarray(q_of(int(imp["model_version"]), state, actions), dtype=np.float32)
            shop, item_type = categories(actions)
        except KeyError:
            skip("the version that served it is not on model-weights")
            continue
        except ValueError:
            skip("features that do not fit the network or the catalog map")
            continue
        got = credited.get(str(imp["request_id"]), set())
        rows.append({"t": int(imp["event_time"]), "state": state, "actions": actions, "q": q, "shop": shop,
                     "type": item_type, "clicks": np.array([s["item_id"] in got for s in imp["slots"]], np.float32)})
    if not rows:
        raise ValueError(f"none of the {len(usable)} logged impressions can be used: {skipped}")
    widths = {(r["state"].size, r["actions"].shape[1]) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"the log mixes feature sizes {sorted(widths)}; train on one model's range")
    b = len(rows)
    requests = RequestBatch(
        request_time=np.array([r["t"] for r in rows], dtype=np.int64),
        user=np.zeros(b, dtype=np.int64),
        user_features=np.stack([r["state"] for r in rows]),
        candidates=np.tile(np.arange(n, dtype=np.int64), (b, 1)),
        item_features=np.stack([r["actions"] for r in rows]),
        shop=np.stack([r["shop"] for r in rows]).astype(np.int64),
        item_type=np.stack([r["type"] for r in rows]).astype(np.int64),
        ranker_score=np.stack([r["q"] for r in rows]),
        pinned=np.full(b, -1, dtype=np.int64),
    )
    shown = np.tile(np.arange(n, dtype=np.int64), (b, 1))
    return FromLog(LoggedLists(requests, shown, np.stack([r["clicks"] for r in rows])), skipped)
