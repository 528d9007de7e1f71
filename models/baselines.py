"""Click-prediction baselines of DRN's offline table (Table 4): logistic regression and a factorisation
machine on x = [state features, action features] of each shown slot, trained on the same transitions as
the DDQN (label = the logged click). Both standardise x with the training mean/std and score a candidate
set with `score(states [B, Ds], actions [B, N, Da]) -> [B, N]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.transitions import TransitionSet


@dataclass(frozen=True)
class BaselineConfig:
    """Training of LR / FM (pointwise BCE, Adam, minibatches drawn with a seeded generator)."""

    steps: int = 1500
    batch_size: int = 512
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    fm_factors: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.fm_factors < 1:
            raise ValueError(
                f"BaselineConfig: steps >= 0, batch_size >= 1 and fm_factors >= 1 needed, got {self}"
            )
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError(f"BaselineConfig: learning_rate > 0 and weight_decay >= 0 needed, got {self}")
        if self.seed < 0:
            raise ValueError(f"BaselineConfig.seed must be >= 0, got {self.seed}")


class _Pointwise(nn.Module):
    """x -> click logit; subclasses define `logit(x [..., D])`."""

    mean: torch.Tensor
    std: torch.Tensor
    linear: nn.Linear

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit((x - self.mean) / self.std)

    def score(self, states: npt.ArrayLike, actions: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Click logits of every candidate: states [B, Ds], actions [B, N, Da] -> [B, N]."""
        s = torch.as_tensor(np.asarray(states, dtype=np.float32))
        a = torch.as_tensor(np.asarray(actions, dtype=np.float32))
        x = torch.cat([s.unsqueeze(1).expand(-1, a.shape[1], -1), a], dim=-1)
        with torch.no_grad():
            out: npt.NDArray[np.float32] = self(x).numpy()
        return out


class LogisticRegression(_Pointwise):
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.linear = nn.Linear(dim, 1)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


class FactorizationMachine(_Pointwise):
    """Rendle's FM: w0 + <w, x> + Σ_{i<j} <v_i, v_j> x_i x_j, computed in O(D·k)."""

    def __init__(self, dim: int, factors: int, generator: torch.Generator) -> None:
        super().__init__(dim)
        self.linear = nn.Linear(dim, 1)
        self.factors = nn.Parameter(torch.randn(dim, factors, generator=generator) * 0.01)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        xv = x @ self.factors
        pair = 0.5 * (xv.pow(2) - (x.pow(2) @ self.factors.pow(2))).sum(-1)
        return self.linear(x).squeeze(-1) + pair


def _inputs(data: TransitionSet, pairs: npt.NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.concatenate([data.states[pairs[:, 0]], data.actions[pairs[:, 0], pairs[:, 1]]], axis=1)
    y = data.clicks[pairs[:, 0], pairs[:, 1]].astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def train_baseline(kind: str, data: TransitionSet, rows: npt.NDArray[np.int64],
                   config: BaselineConfig | None = None) -> _Pointwise:
    """Fit 'lr' or 'fm' on the transitions of `rows`; deterministic for config.seed."""
    cfg = config or BaselineConfig()
    pairs = data.pairs(rows)
    if pairs.shape[0] == 0:
        raise ValueError("no transition to train a baseline on")
    x, y = _inputs(data, pairs)
    dim = x.shape[1]
    gen = torch.Generator().manual_seed(cfg.seed)
    model: _Pointwise
    if kind == "lr":
        model = LogisticRegression(dim)
    elif kind == "fm":
        model = FactorizationMachine(dim, cfg.fm_factors, gen)
    else:
        raise ValueError(f"unknown baseline {kind!r}; known: lr, fm")
    with torch.no_grad():
        for p in model.linear.parameters():
            p.zero_()
        model.mean.copy_(x.mean(0))
        model.std.copy_(x.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(cfg.steps):
        b = torch.from_numpy(rng.integers(0, x.shape[0], size=cfg.batch_size))
        loss = loss_fn(model(x[b]), y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()
