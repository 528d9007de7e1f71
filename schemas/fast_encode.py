"""A hand-written Avro binary encoder of Impression, byte for byte what `serde.encode` writes, for the
simulator's hot path (fastavro spent ~90 µs on one impression's 10 x 26 + 16 floats; this takes a fraction), and
one of Click (`encode_click`, `CLICK_LAYOUT`), which fastavro took ~4 µs for.

Written for one layout of schemas/impression.avsc: `IMPRESSION_LAYOUT` is that layout (the wire schema's
field names and types, docs and defaults left out). When the schema file says anything else, the fast
path turns itself off and `encode_impression` is fastavro's `serde.encode`; a unit test fails then, so the
encoder is brought up to date rather than silently bypassed. Anything this encoder does not expect in a
record (a type it does not handle) is also handed to fastavro, which then encodes it or names the error.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from schemas import serde
from schemas.event_time import encode_long

IMPRESSION_LAYOUT: list[tuple[str, Any]] = [
    ("request_id", "string"), ("user_id", "string"), ("event_time", {"type": "long"}), ("model_id", "string"),
    ("model_version", "long"), ("explore_seed", "long"),
    ("slots", {"type": "array", "items": {"type": "record", "name": "drnflow.Slot", "fields": [
        {"name": "item_id", "type": "string"}, {"name": "position", "type": "int"},
        {"name": "team", "type": {"type": "enum", "name": "drnflow.Team", "symbols": ["CURRENT", "EXPLORE"]}},
        {"name": "features", "type": {"type": "array", "items": "float"}},
        {"name": "explore_seed", "type": ["null", "long"]}]}}),
    ("state_features", {"type": "array", "items": "float"}),
    ("explore_seeds", {"type": "array", "items": "long"}),
    ("interleaving", "string"),
    ("generator", ["null", "string"]),
    ("pdgd", ["null", {"type": "record", "name": "drnflow.PdgdSampling", "fields": [
        {"name": "temperature", "type": "double"}, {"name": "log_rest", "type": "double"}]}]),
]

_TEAM = {"CURRENT": 0, "EXPLORE": 1}
_SMALL = [encode_long(n) for n in range(-512, 512)]  # the zigzag varints of -512..511


def _long(n: int) -> bytes:
    if type(n) is not int:
        raise TypeError(f"expected an int, got {type(n).__name__}")
    return _SMALL[n + 512] if -512 <= n < 512 else encode_long(n)


def _string(s: str) -> bytes:
    if type(s) is not str:
        raise TypeError(f"expected a str, got {type(s).__name__}")
    b = s.encode()
    return _long(len(b)) + b


_PACK_FLOATS: dict[int, Any] = {}  # n -> struct.Struct("<nf").pack


def _floats(values: Any) -> bytes:
    n = len(values)
    if not n:
        return b"\x00"
    pack = _PACK_FLOATS.get(n)
    if pack is None:
        pack = struct.Struct(f"<{n}f").pack
        if len(_PACK_FLOATS) < 256:  # a few lengths in practice (features per slot, state features)
            _PACK_FLOATS[n] = pack
    return _long(n) + pack(*values) + b"\x00"


def _strip(node: Any) -> Any:
    """The parsed schema without docs, defaults and fastavro's bookkeeping keys, to compare with the layout."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in ("doc", "default") and not k.startswith("__")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _layout_matches() -> bool:
    schema = _strip(serde.parsed_schema("Impression"))
    fields = [(f["name"], f["type"]) for f in schema["fields"]]
    return fields == IMPRESSION_LAYOUT


ACTIVE = _layout_matches()

#: schemas/click.avsc's wire layout, as IMPRESSION_LAYOUT is the Impression's.
CLICK_LAYOUT: list[tuple[str, Any]] = [
    ("request_id", "string"), ("item_id", "string"), ("event_time", {"type": "long"}),
    ("user_id", ["null", "string"]),
]


def _click_layout_matches() -> bool:
    schema = _strip(serde.parsed_schema("Click"))
    return [(f["name"], f["type"]) for f in schema["fields"]] == CLICK_LAYOUT


CLICK_ACTIVE = _click_layout_matches()


def _fast(r: Mapping[str, Any]) -> bytes:
    parts = [_string(r["request_id"]), _string(r["user_id"]), _long(r["event_time"]), _string(r["model_id"]),
             _long(r["model_version"]), _long(r["explore_seed"])]
    slots = r["slots"]
    if slots:
        parts.append(_long(len(slots)))
        for s in slots:
            seed = s["explore_seed"]
            position = s["position"]
            if not -(1 << 31) <= position < (1 << 31):
                raise OverflowError(f"position {position} is out of the range of an Avro int")
            parts += (_string(s["item_id"]), _long(position), _SMALL[_TEAM[s["team"]] + 512],
                      _floats(s["features"]), b"\x00" if seed is None else b"\x02" + _long(seed))
    parts.append(b"\x00")
    parts.append(_floats(r["state_features"]))
    seeds = r["explore_seeds"]
    parts.append(_long(len(seeds)) + b"".join(_long(x) for x in seeds) + b"\x00" if seeds else b"\x00")
    parts.append(_string(r["interleaving"]))
    generator = r["generator"]
    parts.append(b"\x00" if generator is None else b"\x02" + _string(generator))
    pdgd = r["pdgd"]
    parts.append(b"\x00" if pdgd is None else
                 b"\x02" + struct.pack("<dd", pdgd["temperature"], pdgd["log_rest"]))
    return b"".join(parts)


def encode_impression(record: Mapping[str, Any]) -> bytes:
    """The Avro binary of an Impression, as `serde.encode("Impression", record, check=False)` writes it."""
    if ACTIVE:
        try:
            return _fast(record)
        except (KeyError, TypeError, ValueError, OverflowError, struct.error, AttributeError):
            pass
    return serde.encode("Impression", record, check=False)


def _fast_click(r: Mapping[str, Any]) -> bytes:
    user_id = r["user_id"]
    return (_string(r["request_id"]) + _string(r["item_id"]) + _long(r["event_time"])
            + (b"\x00" if user_id is None else b"\x02" + _string(user_id)))


def encode_click(record: Mapping[str, Any]) -> bytes:
    """The Avro binary of a Click, as `serde.encode("Click", record, check=False)` writes it (fastavro took ~4 µs
    a click); anything the fast path does not expect (a numpy int, a missing field) is fastavro's to encode."""
    if CLICK_ACTIVE:
        try:
            return _fast_click(record)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            pass
    return serde.encode("Click", record, check=False)
