"""The mixer's Dueling DQN: DRN's dueling network (models/drn.py) over placements.

Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a'): a state tower (user and session features) gives V(s) and a
state representation; an action tower over (that representation, the placement's dense features) gives
A(s, a); the mean is over the request's placements, all of which are always valid (mask all True).
"""

from __future__ import annotations

import torch

from models.drn import DrnConfig, DrnQNetwork


def mixer_network(state_dim: int, action_dim: int, hidden: int = 64, seed: int = 0) -> DrnQNetwork:
    cfg = DrnConfig(state_dim, action_dim, state_hidden=(hidden, hidden // 2),
                    action_hidden=(hidden, hidden // 2), seed=seed)
    return DrnQNetwork(cfg)


def value_and_advantage(net: DrnQNetwork, states: torch.Tensor,
                        actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V(s) [B], the centred advantage A(s, a) − mean A [B, N]) as the network composes them."""
    v = net.value_head(net.state_repr(states)).squeeze(-1)
    q = net(states, actions)
    return v, q - v.unsqueeze(1)
