"""Kuaishou's multi-objective list evaluator: the causal trunk of `ListEvaluator` with one head per
objective (click, long view, continue), trained by a summed (optionally weighted) cross-entropy. A list's
score is a user-weighted sum over objectives of the expected count of each, so the weights pick the trade:
clickbait-heavy lists win on clicks and lose on long views and on users who stay."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.ge.environment import OBJECTIVES, LoggedLists
from models.ge.evaluator import EvaluatorTrainConfig, fit_on_log
from models.ge.list_trunk import CausalListTrunk, EvaluatorConfig, position_head
from models.ge.tensors import ListTensors, RequestTensors, as_lists


def check_weights(objectives: Sequence[str], weights: Sequence[float], what: str,
                  non_negative: bool = False) -> tuple[float, ...]:
    """One finite weight per objective, not all zero (and >= 0 for loss weights); ValueError otherwise."""
    out = tuple(float(w) for w in weights)
    if len(out) != len(objectives):
        raise ValueError(f"{what} needs one weight per objective ({', '.join(objectives)}), got {len(out)}")
    if not all(math.isfinite(w) for w in out) or not any(out):
        raise ValueError(f"{what} must be finite and not all zero, got {out}")
    if non_negative and min(out) < 0:
        raise ValueError(f"{what} must be >= 0, got {out}")
    return out


def check_objectives(objectives: Sequence[str]) -> None:
    """Distinct names of OBJECTIVES, at least one; ValueError otherwise."""
    if not objectives or len(set(objectives)) != len(objectives):
        raise ValueError(f"objectives must be distinct and not empty, got {tuple(objectives)}")
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {', '.join(unknown)}: choose from {', '.join(OBJECTIVES)}")


@dataclass(frozen=True)
class MultiTaskConfig:
    """The trunk's shape, the objectives the heads predict, and the default list-score weights."""

    trunk: EvaluatorConfig
    objectives: tuple[str, ...] = OBJECTIVES
    score_weights: tuple[float, ...] | None = None  # None: 1 each

    def __post_init__(self) -> None:
        check_objectives(self.objectives)
        if self.score_weights is not None:
            check_weights(self.objectives, self.score_weights, "MultiTaskConfig.score_weights")

    @property
    def weights(self) -> tuple[float, ...]:
        return self.score_weights if self.score_weights is not None else (1.0,) * len(self.objectives)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> MultiTaskConfig:
        weights = d.get("score_weights")
        return MultiTaskConfig(EvaluatorConfig(**d["trunk"]), tuple(d["objectives"]),
                               None if weights is None else tuple(weights))


class MultiTaskEvaluator(CausalListTrunk):
    """Per-position logits (B, L, O) of each objective from the shared causal trunk."""

    def __init__(self, config: MultiTaskConfig, seed: int = 0) -> None:
        self.multi_task = config  # build_heads, called by the trunk's __init__, reads it
        super().__init__(config.trunk, seed)

    def build_heads(self) -> None:
        self.heads = nn.ModuleDict({name: position_head(self.config.hidden) for name in self.multi_task.objectives})

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.multi_task.objectives

    def forward(self, lists: ListTensors) -> torch.Tensor:
        hidden = self.encode(lists)
        return torch.cat([self.heads[name](hidden) for name in self.objectives], dim=-1)

    def position_probs(self, requests: RequestTensors, lists: torch.Tensor) -> torch.Tensor:
        """P(objective) per position (B, L, O)."""
        return torch.sigmoid(self(requests.gather(lists)))

    def objective_scores(self, requests: RequestTensors, lists: torch.Tensor | npt.ArrayLike) -> torch.Tensor:
        """Predicted expected count of each objective per list (B, O)."""
        return self.position_probs(requests, as_lists(lists)).sum(1)

    def score(self, requests: RequestTensors, lists: torch.Tensor | npt.ArrayLike,
              weights: Sequence[float] | None = None) -> torch.Tensor:
        """The list score (B,): sum over objectives of weight * predicted expected count (default: the
        config's weights), so it drops in wherever a `ListEvaluator.score` is used."""
        w = self.multi_task.weights if weights is None else check_weights(self.objectives, weights, "weights")
        return self.objective_scores(requests, lists) @ torch.tensor(w, dtype=torch.float32)


def train_multi_task(
    evaluator: MultiTaskEvaluator,
    log: LoggedLists,
    config: EvaluatorTrainConfig,
    loss_weights: Sequence[float] | None = None,
    progress: bool = False,
) -> list[float]:
    """Sum over objectives of loss weight * position cross-entropy; the mean loss of each epoch."""
    names = evaluator.objectives
    lam = torch.tensor(check_weights(names, loss_weights, "loss weights", non_negative=True)
                       if loss_weights is not None else (1.0,) * len(names), dtype=torch.float32)
    labels = torch.as_tensor(np.stack([log.labels(name) for name in names], axis=-1), dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")

    def batch_loss(lists: ListTensors, rows: torch.Tensor) -> torch.Tensor:
        per_objective = loss_fn(evaluator(lists), labels[rows]).mean(dim=(0, 1))  # (O,)
        return (per_objective * lam).sum()

    return fit_on_log(evaluator, log, config, batch_loss, progress)


def predict_objectives(evaluator: MultiTaskEvaluator, log: LoggedLists,
                       batch_size: int = 1024) -> dict[str, npt.NDArray[np.float64]]:
    """Predicted probabilities (B, N) of each objective on the logged lists."""
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    out = []
    with torch.no_grad():
        for start in range(0, len(log), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(log)))
            out.append(evaluator.position_probs(requests.index(rows), shown[rows]).numpy())
    probs = np.concatenate(out).astype(np.float64)
    return {name: probs[..., i] for i, name in enumerate(evaluator.objectives)}


def save_multi_task(path: Path, setup: dict[str, Any], evaluator: MultiTaskEvaluator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"setup": setup, "config": asdict(evaluator.multi_task), "state_dict": evaluator.state_dict()},
               path)


def load_multi_task(path: Path) -> tuple[dict[str, Any], MultiTaskEvaluator]:
    """The evaluator and its setup; ValueError (one sentence) for a file that is not one."""
    try:
        ckpt = torch.load(path, weights_only=True)
        evaluator = MultiTaskEvaluator(MultiTaskConfig.from_dict(ckpt["config"]))
        evaluator.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # torch.load raises many types on a file that is not a checkpoint
        raise ValueError(f"{path} is not a multi-task evaluator checkpoint "
                         f"({type(e).__name__}: {str(e)[:200]})") from None
    return dict(ckpt["setup"]), evaluator.eval()
