"""The byte layout of a learner's Flink state (DbgdLearner, PdgdLearner): magic, header length, a canonical
JSON header, then blobs (float32-LE weights) the header lists with their sizes and sha256. Deterministic:
the same state gives the same bytes, so a replay's state and outputs can be compared byte for byte."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from models.weights import FlatWeights, from_bytes, to_bytes


def blob_entry(blob: bytes) -> list[Any]:
    """[size, sha256] of one blob, as headers list them."""
    return [len(blob), hashlib.sha256(blob).hexdigest()]


def history_entries(history: Mapping[int, FlatWeights]) -> tuple[list[list[Any]], list[bytes]]:
    """([version, size, sha256] per kept version, ascending) and the versions' weight bytes in that order."""
    versions = sorted(history)
    blobs = [to_bytes(history[v]) for v in versions]
    return [[v, *blob_entry(b)] for v, b in zip(versions, blobs, strict=True)], blobs


def pack(magic: bytes, header: Mapping[str, Any], blobs: Sequence[bytes]) -> bytes:
    head = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return b"".join([magic, struct.pack("<Q", len(head)), head, *blobs])


class Reader:
    """Reads a `pack`ed snapshot back: the header, then its blobs in order, each checked; ValueError naming
    `what` (e.g. "model m: DbgdLearner snapshot") on foreign, truncated or corrupt bytes."""

    def __init__(self, data: bytes, magic: bytes, what: str) -> None:
        self.data = bytes(data)
        self.what = what
        if not self.data.startswith(magic):
            raise ValueError(f"{what}: not one (bad magic)")
        at = len(magic)
        try:
            (head_len,) = struct.unpack_from("<Q", self.data, at)
            at += 8
            self.header: dict[str, Any] = json.loads(self.data[at: at + head_len].decode("ascii"))
        except (struct.error, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{what}: corrupt header: {e}") from None
        self.at = at + head_len

    def blob(self, entry: Sequence[Any], name: str) -> bytes:
        size, digest = entry
        blob = self.data[self.at: self.at + int(size)]
        if len(blob) != size or hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError(f"{self.what}: {name} are truncated or corrupt")
        self.at += int(size)
        return blob

    def history(self, entries: Sequence[Sequence[Any]]) -> dict[int, FlatWeights]:
        return {int(v): from_bytes(self.blob((size, digest), f"weights of version {v}")) for v, size, digest in entries}

    def end(self) -> None:
        if self.at != len(self.data):
            raise ValueError(f"{self.what}: {len(self.data) - self.at} trailing bytes (corrupt)")
