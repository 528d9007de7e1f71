"""The shared trunk refactor leaves ListEvaluator bit-identical: the pre-refactor class and training loop
(copied here verbatim as the reference) give the same parameters, logits and epoch losses for a seed."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.ge.environment import EnvConfig, ListEnvironment, LoggedLists, log_exposures
from models.ge.evaluator import EvaluatorConfig, EvaluatorTrainConfig, ListEvaluator, train_evaluator
from models.ge.tensors import ListTensors, RequestTensors, causal_context

torch.set_num_threads(1)

TINY = EnvConfig(n_users=50, n_items=300, n_shops=8, n_types=4, item_dim=6, user_dim=4, latent_dim=4,
                 candidates=12, list_size=5)


class _OldListEvaluator(nn.Module):
    """ListEvaluator as of commit 55fe530, before the trunk moved to models/ge/list_trunk.py."""

    def __init__(self, config: EvaluatorConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
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
        length = lists.shop.shape[1]
        context = causal_context(lists.shop, lists.item_type)
        dense = torch.cat([lists.item_features, lists.ranker_score.unsqueeze(-1), context], dim=-1)
        tokens = (self.item_in(dense) + self.shop_emb(lists.shop) + self.type_emb(lists.item_type)
                  + self.pos_emb(torch.arange(length)) + self.user_in(lists.user_features).unsqueeze(1))
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        hidden = self.encoder(tokens, mask=mask, is_causal=True)
        return self.head(hidden).squeeze(-1)


def _old_train(evaluator: nn.Module, log: LoggedLists, config: EvaluatorTrainConfig) -> list[float]:
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    clicks = torch.as_tensor(log.clicks, dtype=torch.float32)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(evaluator.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    losses: list[float] = []
    evaluator.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(log), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(log), config.batch_size):
            rows = order[start:start + config.batch_size]
            loss = loss_fn(evaluator(requests.index(rows).gather(shown[rows])), clicks[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
    evaluator.eval()
    return losses


def test_list_evaluator_is_bit_identical_to_before_the_trunk_refactor() -> None:
    env = ListEnvironment(TINY, seed=0)
    log = log_exposures(env, 300, seed=1)
    config = EvaluatorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types, hidden=16,
                             feedforward=32)
    new, old = ListEvaluator(config, seed=3), _OldListEvaluator(config, seed=3)
    assert list(new.state_dict()) == list(old.state_dict())  # checkpoints keep their keys
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values(),
                                                 strict=True))
    lists = RequestTensors.from_batch(log.requests).gather(torch.as_tensor(log.shown))
    with torch.no_grad():
        assert torch.equal(new(lists), old(lists))
    train_cfg = EvaluatorTrainConfig(epochs=2, batch_size=64, seed=5)
    assert train_evaluator(new, log, train_cfg) == _old_train(old, log, train_cfg)
    with torch.no_grad():
        assert torch.equal(new(lists), old(lists))
    assert np.isfinite(new(lists).detach().numpy()).all()
    old.load_state_dict(new.state_dict())  # and a new checkpoint loads into the old layout
