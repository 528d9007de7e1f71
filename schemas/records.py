"""Builders of the records drnflow writes, one per record type, so every writer fills the same fields.

Plain Python on purpose (lists, not arrays): the bottom layer knows the schema, not numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: One shown slot, in display order: (item_id, team CURRENT|EXPLORE, action features, explore seed of
#: the list it came from or None for the current list).
ShownSlot = tuple[str, str, list[float], int | None]


def impression_record(
    *,
    request_id: str,
    user_id: str,
    event_time: int,
    model_id: str,
    model_version: int,
    explore_seeds: Sequence[int],
    slots: Iterable[ShownSlot],
    state_features: list[float],
    interleaving: str,
    generator: str | None = None,
) -> dict[str, Any]:
    """An Impression (schemas/impression.avsc). `explore_seed` is the first of `explore_seeds` (0 for a
    policy that does not explore); positions are the slots' order."""
    return {
        "request_id": request_id,
        "user_id": user_id,
        "event_time": int(event_time),
        "model_id": model_id,
        "model_version": int(model_version),
        "explore_seed": int(explore_seeds[0]) if explore_seeds else 0,
        "slots": [
            {"item_id": item_id, "position": pos, "team": team, "features": features, "explore_seed": seed}
            for pos, (item_id, team, features, seed) in enumerate(slots)
        ],
        "state_features": state_features,
        "explore_seeds": list(explore_seeds),
        "interleaving": interleaving,
        "generator": generator,
    }
