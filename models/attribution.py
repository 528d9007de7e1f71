"""Attribution (design.md §4), written once: which impression a request_id means, which clicks count.

The reference (models/reference.py), the major update's transitions (models/transitions.py) and the
in-memory loop call these functions; the JVM operator (operators/jvm/.../AttributeClicks.java)
implements the same rules per event, and tests hold the two to the same outputs.

- **Impressions**: the first impression of a request_id *in input (topic) order* is the impression;
  later ones are DUPLICATE_IMPRESSION and count nowhere. Input order, not event time, because a
  stream cannot take back a decision: the job keeps the first one it sees. Impressions are keyed by
  request_id, so all of one request's impressions share a partition and "first" is well defined.
- **Clicks**: rules 1-4 of §4 in order, the first that fails is the reason. DUPLICATE is decided among
  the clicks that pass rules 1-3, the first by (event_time, input position) counting.
- **Credit**: an item listed twice takes the team of its first slot (models/interleave.credit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.reasons import DUPLICATE, ITEM_NOT_SHOWN, OUTSIDE_WINDOW, UNKNOWN_REQUEST


@dataclass
class ImpressionIndex:
    """request_id -> input position of its impression, and (position, first position) per duplicate."""

    first: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[int, int]] = field(default_factory=list)


def index_impressions(request_ids: Iterable[str | None]) -> ImpressionIndex:
    """The first impression per request_id in input order; every later one is a duplicate. A None
    request_id (a record that is not an impression at all, e.g. MALFORMED) takes a position and nothing else."""
    out = ImpressionIndex()
    for position, rid in enumerate(request_ids):
        if rid is None:
            continue
        first = out.first.get(rid)
        if first is None:
            out.first[rid] = position
        else:
            out.duplicates.append((position, first))
    return out


@dataclass(frozen=True)
class Refusal:
    """A click that does not count: its input position, the §4 reason code and one sentence."""

    position: int
    reason: str
    detail: str


@dataclass
class ClickAttribution:
    """request_id -> the item_ids whose clicks count, and every click that does not."""

    credited: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    refused: list[Refusal] = field(default_factory=list)


def click_rule_failure(
    impression: Mapping[str, Any] | None,
    click: Mapping[str, Any],
    attribution_window_ms: int,
    click_horizon_ms: int | None = None,
) -> tuple[str, str] | None:
    """(reason, detail) of the first §4 rule 1-3 `click` breaks against its request's impression (None:
    no impression has its request_id), or None when it passes them."""
    rid, item, t = str(click["request_id"]), str(click["item_id"]), int(click["event_time"])
    if impression is None:
        return UNKNOWN_REQUEST, f"Click.request_id {rid!r} matches no impression"
    start = int(impression["event_time"])
    if click_horizon_ms is not None and abs(t - start) > click_horizon_ms:
        return UNKNOWN_REQUEST, f"Click.request_id {rid!r} has no impression within {click_horizon_ms} ms"
    if item not in {str(slot["item_id"]) for slot in impression["slots"]}:
        return ITEM_NOT_SHOWN, f"Click.item_id {item!r} is not in the slots of request {rid!r}"
    end = start + attribution_window_ms
    if not start <= t <= end:
        return OUTSIDE_WINDOW, f"Click.event_time {t} is outside [{start}, {end}] of request {rid!r}"
    return None


def attribute_clicks(
    impression_of: Mapping[str, Mapping[str, Any]],
    clicks: Sequence[Mapping[str, Any]],
    attribution_window_ms: int,
    click_horizon_ms: int | None = None,
) -> ClickAttribution:
    """§4 rules 1-4 for every click against `impression_of` (request_id -> its impression)."""
    out = ClickAttribution()
    order = sorted(range(len(clicks)), key=lambda i: (int(clicks[i]["event_time"]), i))
    for i in order:
        click = clicks[i]
        rid, item = str(click["request_id"]), str(click["item_id"])
        failed = click_rule_failure(impression_of.get(rid), click, attribution_window_ms, click_horizon_ms)
        if failed is None and item in out.credited[rid]:
            failed = DUPLICATE, f"Click on ({rid!r}, {item!r}) already counted"
        if failed is None:
            out.credited[rid].add(item)
        else:
            out.refused.append(Refusal(i, *failed))
    out.credited = {rid: items for rid, items in out.credited.items() if items}
    return out
