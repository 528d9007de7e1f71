"""The ModelWeights layout: flat float32 weight vectors, their parameter layout, and the Avro record.

Layout order is `module.named_parameters()` order (registration order, recursively), each parameter
flattened row-major (C order, torch's contiguous layout; a Linear weight is [out, in]). The flat
vector is what ΔW(seed; W) of models/perturbation.py indexes, so the ranker and the learner must
both build it here. On the wire the bytes are float32 little-endian, `checksum` is their sha256 hex.

No torch import at module level: serving code parses records without needing torch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

FlatWeights = npt.NDArray[np.float32]
WEIGHTS_KINDS = ("MAJOR", "MINOR", "ROLLBACK")
_WIRE_DTYPE = np.dtype("<f4")


class WeightsError(ValueError):
    """A ModelWeights record or flat vector breaks a rule; the message names the field and the rule."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of the layout: its `named_parameters()` name and shape."""

    name: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.name:
            raise WeightsError("ParamSpec.name must be a non-empty string")
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise WeightsError(f"ParamSpec {self.name!r}: shape must be non-negative ints, got {self.shape}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape)}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ParamSpec:
        return cls(str(rec["name"]), tuple(int(d) for d in rec["shape"]))


Layout = list[ParamSpec]


def layout_size(layout: Sequence[ParamSpec]) -> int:
    """Number of float32 values a flat vector of this layout holds."""
    return sum(p.size for p in layout)


def layout_of(module: torch.nn.Module) -> Layout:
    """The layout of a torch module, in `named_parameters()` order."""
    return [ParamSpec(name, tuple(int(d) for d in p.shape)) for name, p in module.named_parameters()]


def flatten(module: torch.nn.Module) -> FlatWeights:
    """All parameters concatenated in layout order as one float32 vector (a copy)."""
    parts = [
        p.detach().cpu().reshape(-1).to(dtype=_torch().float32).numpy() for _, p in module.named_parameters()
    ]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def unflatten_into(module: torch.nn.Module, flat: npt.ArrayLike, layout: Sequence[ParamSpec]) -> None:
    """Copy a flat vector into the module's parameters; the layout must be the module's own."""
    torch = _torch()
    own = layout_of(module)
    if list(layout) != own:
        raise WeightsError(
            f"layout does not match the module: got {_describe(layout)}, module has {_describe(own)}"
        )
    views = split(check_flat(flat, layout), layout)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(np.array(views[name], dtype=np.float32)).to(p.device, p.dtype))


def split(flat: FlatWeights, layout: Sequence[ParamSpec]) -> dict[str, FlatWeights]:
    """Name -> reshaped view into `flat` (no copies), in layout order."""
    out: dict[str, FlatWeights] = {}
    offset = 0
    for spec in layout:
        out[spec.name] = flat[offset : offset + spec.size].reshape(spec.shape)
        offset += spec.size
    if offset != flat.size:
        raise WeightsError(f"flat vector has {flat.size} values, layout needs {offset}")
    return out


def check_flat(flat: npt.ArrayLike, layout: Sequence[ParamSpec]) -> FlatWeights:
    """The flat vector as contiguous float32, after checking its size and that every value is finite."""
    arr = np.ascontiguousarray(np.asarray(flat, dtype=np.float32).reshape(-1))
    need = layout_size(layout)
    if arr.size != need:
        raise WeightsError(f"weights: {arr.size} float32 values, layout needs {need}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise WeightsError(f"weights: value at flat index {bad} is not finite ({arr[bad]})")
    return arr


def checksum(data: bytes) -> str:
    """sha256 hex digest of the weights bytes."""
    return hashlib.sha256(data).hexdigest()


def to_bytes(flat: npt.ArrayLike) -> bytes:
    """float32 little-endian bytes of a flat vector."""
    return np.asarray(flat, dtype=np.float32).reshape(-1).astype(_WIRE_DTYPE, copy=False).tobytes()


def from_bytes(data: bytes) -> FlatWeights:
    """A flat float32 (native order) vector from little-endian bytes."""
    if len(data) % 4:
        raise WeightsError(f"weights: {len(data)} bytes is not a whole number of float32 values")
    return np.frombuffer(data, dtype=_WIRE_DTYPE).astype(np.float32)


def make_model_weights_record(
    model_id: str,
    version: int,
    parent_version: int | None,
    kind: str,
    flat: npt.ArrayLike,
    layout: Sequence[ParamSpec],
    created_at: int,
    explore_seeds: Iterable[int],
    window_start: int | None = None,
    window_end: int | None = None,
    architecture: str = "",
) -> dict[str, Any]:
    """A ModelWeights record (schemas/model_weights.avsc) ready for schemas.serde.encode.

    Validates before building, so a bad version never reaches the topic.
    """
    if not model_id:
        raise WeightsError("ModelWeights.model_id must be a non-empty string")
    if kind not in WEIGHTS_KINDS:
        raise WeightsError(f"ModelWeights.kind must be one of {WEIGHTS_KINDS}, got {kind!r}")
    if int(version) < 0:
        raise WeightsError(f"ModelWeights.version must be >= 0, got {version}")
    arr = check_flat(flat, layout)
    data = to_bytes(arr)
    return {
        "model_id": model_id,
        "version": int(version),
        "parent_version": None if parent_version is None else int(parent_version),
        "kind": kind,
        "created_at": int(created_at),
        "window_start": None if window_start is None else int(window_start),
        "window_end": None if window_end is None else int(window_end),
        "explore_seeds": [int(s) for s in explore_seeds],
        "weights": data,
        "layout": [p.to_record() for p in layout],
        "checksum": checksum(data),
        "architecture": architecture,
    }


def parse_model_weights_record(rec: Mapping[str, Any]) -> tuple[FlatWeights, Layout]:
    """(flat float32 weights, layout) of a decoded ModelWeights record, after checking checksum,
    size against the layout and finiteness. Raises WeightsError naming the model, version and rule."""
    where = f"ModelWeights(model_id={rec.get('model_id')!r}, version={rec.get('version')!r})"
    try:
        data = bytes(rec["weights"])
        layout = [ParamSpec.from_record(p) for p in rec["layout"]]
        declared = str(rec["checksum"])
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{where}: missing or malformed field: {e!r}") from None
    names = [p.name for p in layout]
    if len(set(names)) != len(names):
        raise WeightsError(f"{where}: layout has duplicate parameter names")
    actual = checksum(data)
    if actual != declared:
        raise WeightsError(
            f"{where}: checksum mismatch: record says {declared}, weights bytes hash to {actual}"
        )
    try:
        flat = check_flat(from_bytes(data), layout)
    except WeightsError as e:
        raise WeightsError(f"{where}: {e}") from None
    return flat, layout


def _describe(layout: Sequence[ParamSpec]) -> str:
    return "[" + ", ".join(f"{p.name}{list(p.shape)}" for p in layout) + "]"


def _torch() -> Any:
    import torch

    return torch
