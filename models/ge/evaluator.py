"""The list-wise evaluator: a unidirectional transformer over (user, ordered items) predicting each
position's click; a list's score is its predicted expected clicks (Kuaishou: later items see earlier
ones only, so a prefix's predictions never depend on what follows it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.ge.environment import LoggedLists
from models.ge.list_trunk import CausalListTrunk, position_head
from models.ge.list_trunk import EvaluatorConfig as EvaluatorConfig  # re-exported: its home before the trunk
from models.ge.tensors import ListTensors, RequestTensors, as_lists


@dataclass(frozen=True)
class EvaluatorTrainConfig:
    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("EvaluatorTrainConfig.epochs and batch_size must be >= 1")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"EvaluatorTrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError("EvaluatorTrainConfig.weight_decay must be >= 0")


class ListEvaluator(CausalListTrunk):
    """Position click logits for ordered lists; causal self-attention only (the trunk's)."""

    def build_heads(self) -> None:
        self.head = position_head(self.config.hidden)

    def forward(self, lists: ListTensors) -> torch.Tensor:
        """Click logits (B, L)."""
        return self.head(self.encode(lists)).squeeze(-1)

    def position_probs(self, requests: RequestTensors, lists: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(requests.gather(lists)))

    def score(self, requests: RequestTensors, lists: torch.Tensor | npt.ArrayLike) -> torch.Tensor:
        """The list's score (B,): predicted expected clicks."""
        return self.position_probs(requests, as_lists(lists)).sum(-1)


BatchLoss = Callable[[ListTensors, torch.Tensor], torch.Tensor]


def fit_on_log(
    model: nn.Module,
    log: LoggedLists,
    config: EvaluatorTrainConfig,
    batch_loss: BatchLoss,
    progress: bool = False,
) -> list[float]:
    """Adam over shuffled minibatches of the logged lists; `batch_loss(lists, rows)` is the loss of the rows'
    lists. Shared by the evaluators so they see batches in the same seeded order; the mean loss per epoch."""
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    n = len(log)
    losses: list[float] = []
    epochs = range(config.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="evaluator epochs", unit="epoch")
    model.train()
    for _ in epochs:
        order = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for start in range(0, n, config.batch_size):
            rows = order[start:start + config.batch_size]
            sub = requests.index(rows)
            loss = batch_loss(sub.gather(shown[rows]), rows)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
    model.eval()
    return losses


def train_evaluator(
    evaluator: ListEvaluator,
    log: LoggedLists,
    config: EvaluatorTrainConfig,
    progress: bool = False,
) -> list[float]:
    """Cross-entropy on logged position clicks; returns the mean loss of each epoch."""
    clicks = torch.as_tensor(log.clicks, dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss()
    return fit_on_log(evaluator, log, config, lambda lists, rows: loss_fn(evaluator(lists), clicks[rows]),
                      progress)


def predict_logged(
    evaluator: ListEvaluator, log: LoggedLists, batch_size: int = 1024
) -> npt.NDArray[np.float64]:
    """Predicted click probabilities (B, N) of the logged lists."""
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    out = []
    with torch.no_grad():
        for start in range(0, len(log), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(log)))
            out.append(evaluator.position_probs(requests.index(rows), shown[rows]).numpy())
    return np.concatenate(out).astype(np.float64)


def auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC by ranks (ties get their average rank)."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos = int(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        raise ValueError("AUC needs both clicked and unclicked positions")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties averaged
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
