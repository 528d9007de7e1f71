"""Requests as torch tensors, gathering ordered lists from candidates, and causal list-context features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from models.ge.environment import RequestBatch


@dataclass(frozen=True)
class RequestTensors:
    """What the models see of B requests with M candidates (no hidden truth)."""

    user_features: torch.Tensor  # (B, Du) float
    item_features: torch.Tensor  # (B, M, Di) float
    shop: torch.Tensor  # (B, M) long
    item_type: torch.Tensor  # (B, M) long
    ranker_score: torch.Tensor  # (B, M) float
    pinned: torch.Tensor  # (B,) long, -1 for none

    @staticmethod
    def from_batch(batch: RequestBatch) -> RequestTensors:
        return RequestTensors(
            user_features=torch.as_tensor(batch.user_features, dtype=torch.float32),
            item_features=torch.as_tensor(batch.item_features, dtype=torch.float32),
            shop=torch.as_tensor(batch.shop, dtype=torch.long),
            item_type=torch.as_tensor(batch.item_type, dtype=torch.long),
            ranker_score=torch.as_tensor(batch.ranker_score, dtype=torch.float32),
            pinned=torch.as_tensor(batch.pinned, dtype=torch.long),
        )

    def __len__(self) -> int:
        return int(self.shop.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.shop.shape[1])

    def index(self, rows: torch.Tensor) -> RequestTensors:
        return RequestTensors(self.user_features[rows], self.item_features[rows], self.shop[rows],
                              self.item_type[rows], self.ranker_score[rows], self.pinned[rows])

    def repeat(self, k: int) -> RequestTensors:
        """Each request k times in a row."""
        return self.index(torch.arange(len(self)).repeat_interleave(k))

    def gather(self, lists: torch.Tensor) -> ListTensors:
        """The ordered lists (B, L) of candidate indices, with their items' features."""
        rows = torch.arange(len(self)).unsqueeze(1)
        return ListTensors(
            user_features=self.user_features,
            item_features=self.item_features[rows, lists],
            shop=self.shop[rows, lists],
            item_type=self.item_type[rows, lists],
            ranker_score=self.ranker_score[rows, lists],
        )


@dataclass(frozen=True)
class ListTensors:
    """B ordered lists of length L: what a list-wise evaluator scores."""

    user_features: torch.Tensor  # (B, Du)
    item_features: torch.Tensor  # (B, L, Di)
    shop: torch.Tensor  # (B, L)
    item_type: torch.Tensor  # (B, L)
    ranker_score: torch.Tensor  # (B, L)


def as_lists(lists: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
    if isinstance(lists, torch.Tensor):
        return lists.long()
    return torch.as_tensor(np.asarray(lists), dtype=torch.long)


def causal_context(shop: torch.Tensor, item_type: torch.Tensor) -> torch.Tensor:
    """Per position, features of the items before it only (B, L, 4): earlier items of the same shop and of
    the same type (scaled), and whether the previous item has the same shop / type. Using only earlier
    items keeps a model built on them unidirectional."""
    length = shop.shape[1]
    earlier = torch.tril(torch.ones(length, length, dtype=torch.bool), diagonal=-1)
    same_shop = ((shop.unsqueeze(2) == shop.unsqueeze(1)) & earlier).sum(-1).float()
    same_type = ((item_type.unsqueeze(2) == item_type.unsqueeze(1)) & earlier).sum(-1).float()
    prev_shop = torch.zeros_like(same_shop)
    prev_type = torch.zeros_like(same_type)
    prev_shop[:, 1:] = (shop[:, 1:] == shop[:, :-1]).float()
    prev_type[:, 1:] = (item_type[:, 1:] == item_type[:, :-1]).float()
    return torch.stack([same_shop / 2.0, same_type / 2.0, prev_shop, prev_type], dim=-1)
