"""Flat float32 weights + (name, shape) layout in named_parameters() order: how a GE model travels on the
model-weights topic and how models.perturbation.explore_delta perturbs it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

Layout = list[tuple[str, tuple[int, ...]]]


def parameter_layout(module: nn.Module) -> Layout:
    return [(name, tuple(p.shape)) for name, p in module.named_parameters()]


def flatten_parameters(module: nn.Module) -> tuple[npt.NDArray[np.float32], Layout]:
    """All parameters concatenated (float32, C order) and their layout."""
    parts = [p.detach().to(torch.float32).reshape(-1).numpy() for _, p in module.named_parameters()]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return flat.astype(np.float32, copy=False), parameter_layout(module)


def load_flat_parameters(module: nn.Module, flat: npt.ArrayLike, layout: Layout) -> None:
    """Write a flat vector back into the module; the layout must match the module's exactly."""
    own = parameter_layout(module)
    if [(n, tuple(s)) for n, s in layout] != own:
        raise ValueError("weights layout does not match the model's parameters (names/shapes/order)")
    vec = np.asarray(flat, dtype=np.float32).reshape(-1)
    expected = sum(int(np.prod(s)) for _, s in own)
    if vec.size != expected:
        raise ValueError(f"flat weights have {vec.size} values, the layout needs {expected}")
    if not np.isfinite(vec).all():
        raise ValueError("flat weights must be finite")
    offset = 0
    with torch.no_grad():
        for _, p in module.named_parameters():
            n = p.numel()
            p.copy_(torch.from_numpy(vec[offset:offset + n].copy()).reshape(p.shape))
            offset += n
