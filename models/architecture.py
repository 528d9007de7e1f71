"""Entries of a ModelWeights record's `architecture` JSON object (design.md §3): besides the network's family
and sizes it carries what travels with a version, the explore parameters (models/perturbation.py) and the
probation parameters (models/probation.py). Written once here so both read and write it alike."""

from __future__ import annotations

import json
from typing import Any


def read_entry(architecture: str, key: str) -> Any:
    """The value under `key`, or None for "", text that is not a JSON object, or a missing key."""
    if not architecture:
        return None
    try:
        d = json.loads(architecture)
    except json.JSONDecodeError:
        return None
    return d.get(key) if isinstance(d, dict) else None


def with_entry(architecture: str, key: str, value: Any) -> str:
    """`architecture` (a JSON object, or "") with `value` under `key`, keys sorted."""
    d = json.loads(architecture) if architecture else {}
    if not isinstance(d, dict):
        raise ValueError(f"architecture must be a JSON object to carry {key!r}, got {architecture!r}")
    d[key] = value
    return json.dumps(d, sort_keys=True)


def without_entry(architecture: str, key: str) -> str:
    """`architecture` less `key` (unchanged when it has none or is not a JSON object)."""
    if read_entry(architecture, key) is None:
        return architecture
    d = json.loads(architecture)
    return json.dumps({k: v for k, v in d.items() if k != key}, sort_keys=True)
