"""The causal transformer trunk shared by the list evaluators (click-only `ListEvaluator`, multi-objective
`MultiTaskEvaluator`): one place for the tokens, the causal mask and the layer order, so both read a list
the same way (Kuaishou: a position sees only what came before it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.ge.tensors import ListTensors, causal_context


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


class CausalListTrunk(nn.Module):
    """Hidden states (B, L, hidden) of ordered lists; subclasses add their heads in `build_heads`.

    Parameters are created in a fixed order under a local seed (trunk first, then the heads), and the
    attribute names are those of the original `ListEvaluator`, so its checkpoints still load."""

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
            self.build_heads()

    def build_heads(self) -> None:
        """Create the output modules (called inside the seeded block, after the trunk)."""

    def encode(self, lists: ListTensors) -> torch.Tensor:
        length = lists.shop.shape[1]
        if length > self.config.max_length:
            raise ValueError(f"list length {length} exceeds EvaluatorConfig.max_length "
                             f"{self.config.max_length}")
        context = causal_context(lists.shop, lists.item_type)
        dense = torch.cat([lists.item_features, lists.ranker_score.unsqueeze(-1), context], dim=-1)
        tokens = (self.item_in(dense) + self.shop_emb(lists.shop) + self.type_emb(lists.item_type)
                  + self.pos_emb(torch.arange(length)) + self.user_in(lists.user_features).unsqueeze(1))
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        return self.encoder(tokens, mask=mask, is_causal=True)


def position_head(hidden: int) -> nn.Sequential:
    """One per-position logit from a hidden state: the head shape of every list evaluator."""
    return nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
