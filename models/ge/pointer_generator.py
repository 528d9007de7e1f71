"""The pointer-network generator: a DeepSet encoder over the M candidates (order-insensitive, each item's
features enhanced with its rank in the candidate set) and a pointer decoder that picks N of M one by one.

Masking is the decoder's contract: an item already chosen is never chosen again, and a pinned trigger
item is forced into position 0. Training samples from the masked distribution (exploration); serving
decodes greedily or samples K lists and keeps the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.ge.tensors import RequestTensors


@dataclass(frozen=True)
class GeneratorConfig:
    """Model shape; `item_dim`, `user_dim`, `n_shops`, `n_types` come from the catalog."""

    item_dim: int
    user_dim: int
    n_shops: int
    n_types: int
    hidden: int = 48
    embedding: int = 8

    def __post_init__(self) -> None:
        for name in ("item_dim", "user_dim", "n_shops", "n_types", "hidden", "embedding"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name} must be >= 1, got {getattr(self, name)}")


def candidate_rank(ranker_score: torch.Tensor) -> torch.Tensor:
    """Each candidate's rank by ranker score within its set, scaled to [0, 1] (0 = best)."""
    m = ranker_score.shape[1]
    order = torch.argsort(ranker_score, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(m).expand_as(order).contiguous())
    return rank.float() / max(m - 1, 1)


class PointerGenerator(nn.Module):
    """DeepSet encoder + pointer decoder. Its parameters, in named_parameters() order, are the flat
    float32 weights a model-weights record carries (see models/weights.py)."""

    def __init__(self, config: GeneratorConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        h, e = config.hidden, config.embedding
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # local: the fork restores the global state on exit
            self.shop_emb = nn.Embedding(config.n_shops, e)
            self.type_emb = nn.Embedding(config.n_types, e)
            self.phi = nn.Sequential(nn.Linear(config.item_dim + config.user_dim + 2 * e + 2, h), nn.ReLU(),
                                     nn.Linear(h, h), nn.ReLU())
            self.rho = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, h))
            self.init_state = nn.Linear(h, h)
            self.cell = nn.GRUCell(h, h)
            self.key = nn.Linear(h, h, bias=False)
            self.query = nn.Linear(h, h)
            self.dynamic = nn.Linear(5, h, bias=False)
            self.score = nn.Linear(h, 1, bias=False)

    def encode(self, requests: RequestTensors) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-candidate encodings (B, M, H) and the set summary (B, H); permutation-equivariant."""
        m = requests.n_candidates
        user = requests.user_features.unsqueeze(1).expand(-1, m, -1)
        x = torch.cat([requests.item_features, user, self.shop_emb(requests.shop),
                       self.type_emb(requests.item_type), requests.ranker_score.unsqueeze(-1),
                       candidate_rank(requests.ranker_score).unsqueeze(-1)], dim=-1)
        h = self.phi(x)
        summary = h.mean(dim=1)
        enc = self.rho(torch.cat([h, summary.unsqueeze(1).expand(-1, m, -1)], dim=-1))
        return enc, summary

    def decode(
        self,
        requests: RequestTensors,
        list_size: int,
        sample: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lists (B, N) of candidate indices and their log-probabilities (B,) under the policy.

        `sample=False` is greedy (argmax of the masked distribution)."""
        b, m = len(requests), requests.n_candidates
        if not 1 <= list_size <= m:
            raise ValueError(f"list_size must be in [1, {m}], got {list_size}")
        enc, summary = self.encode(requests)
        keys = self.key(enc)
        state = torch.tanh(self.init_state(summary))
        rows = torch.arange(b)
        chosen = torch.zeros(b, m, dtype=torch.bool)
        same_shop = requests.shop.unsqueeze(2) == requests.shop.unsqueeze(1)  # (B, M, M)
        same_type = requests.item_type.unsqueeze(2) == requests.item_type.unsqueeze(1)
        shop_count = torch.zeros(b, m)
        type_count = torch.zeros(b, m)
        last_shop = torch.zeros(b, m)
        last_type = torch.zeros(b, m)
        pinned = requests.pinned
        has_pin = pinned >= 0
        picks, log_prob = [], torch.zeros(b)
        for step in range(list_size):
            progress = torch.full((b, m), step / max(list_size - 1, 1))
            dyn = torch.stack([shop_count / 2.0, type_count / 2.0, last_shop, last_type, progress], dim=-1)
            logits = self.score(torch.tanh(keys + self.query(state).unsqueeze(1) + self.dynamic(dyn)))
            logits = logits.squeeze(-1).masked_fill(chosen, float("-inf"))
            if step == 0 and bool(has_pin.any()):
                forced = torch.full_like(logits, float("-inf"))
                forced[rows, pinned.clamp(min=0)] = 0.0
                logits = torch.where(has_pin.unsqueeze(1), forced, logits)
            logp = torch.log_softmax(logits, dim=-1)
            pick = (torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1) if sample
                    else logp.argmax(dim=-1))
            log_prob = log_prob + logp[rows, pick]
            picks.append(pick)
            chosen = chosen.clone()
            chosen[rows, pick] = True
            shop_count = shop_count + same_shop[rows, pick].float()
            type_count = type_count + same_type[rows, pick].float()
            last_shop = same_shop[rows, pick].float()
            last_type = same_type[rows, pick].float()
            state = self.cell(enc[rows, pick], state)
        return torch.stack(picks, dim=1), log_prob
