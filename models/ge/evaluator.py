"""The list-wise evaluator: a unidirectional transformer over (user, ordered items) predicting each
position's click; a list's score is its predicted expected clicks (Kuaishou: later items see earlier
ones only, so a prefix's predictions never depend on what follows it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.ge.environment import LoggedLists
from models.ge.tensors import ListTensors, RequestTensors, as_lists, causal_context


@dataclass(frozen=True)
class EvaluatorConfig:
    """Model shape; `item_dim`, `user_dim`, `n_shops`, `n_types` come from the catalog."""

    item_dim: int
    user_dim: int
    n_shops: int
    n_types: int
    max_length: int = 16
    hidden: int = 32
    heads: int = 2
    layers: int = 2
    feedforward: int = 64

    def __post_init__(self) -> None:
        for name in ("item_dim", "user_dim", "n_shops", "n_types", "max_length", "hidden", "heads",
                     "layers", "feedforward"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvaluatorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"EvaluatorConfig.hidden ({self.hidden}) must be divisible by heads "
                             f"({self.heads})")


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


class ListEvaluator(nn.Module):
    """Position click logits for ordered lists; causal self-attention only."""

    def __init__(self, config: EvaluatorConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # local: the fork restores the global state on exit
            self.item_in = nn.Linear(config.item_dim + 1 + 4, h)
            self.user_in = nn.Linear(config.user_dim, h)
            self.shop_emb = nn.Embedding(config.n_shops, h)
            self.type_emb = nn.Embedding(config.n_types, h)
            self.pos_emb = nn.Embedding(config.max_length, h)
            layer = nn.TransformerEncoderLayer(h, config.heads, config.feedforward, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
            self.head = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def forward(self, lists: ListTensors) -> torch.Tensor:
        """Click logits (B, L)."""
        length = lists.shop.shape[1]
        if length > self.config.max_length:
            raise ValueError(f"list length {length} exceeds EvaluatorConfig.max_length "
                             f"{self.config.max_length}")
        context = causal_context(lists.shop, lists.item_type)
        dense = torch.cat([lists.item_features, lists.ranker_score.unsqueeze(-1), context], dim=-1)
        tokens = (self.item_in(dense) + self.shop_emb(lists.shop) + self.type_emb(lists.item_type)
                  + self.pos_emb(torch.arange(length)) + self.user_in(lists.user_features).unsqueeze(1))
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        hidden = self.encoder(tokens, mask=mask, is_causal=True)
        return self.head(hidden).squeeze(-1)

    def position_probs(self, requests: RequestTensors, lists: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(requests.gather(lists)))

    def score(self, requests: RequestTensors, lists: torch.Tensor | npt.ArrayLike) -> torch.Tensor:
        """The list's score (B,): predicted expected clicks."""
        return self.position_probs(requests, as_lists(lists)).sum(-1)


def train_evaluator(
    evaluator: ListEvaluator,
    log: LoggedLists,
    config: EvaluatorTrainConfig,
    progress: bool = False,
) -> list[float]:
    """Cross-entropy on logged position clicks; returns the mean loss of each epoch."""
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    clicks = torch.as_tensor(log.clicks, dtype=torch.float32)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(evaluator.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(log)
    losses: list[float] = []
    epochs = range(config.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="evaluator epochs", unit="epoch")
    evaluator.train()
    for _ in epochs:
        order = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for start in range(0, n, config.batch_size):
            rows = order[start:start + config.batch_size]
            sub = requests.index(rows)
            logits = evaluator(sub.gather(shown[rows]))
            loss = loss_fn(logits, clicks[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
    evaluator.eval()
    return losses


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
