"""Off-policy training of the mixer's Dueling DQN on logged pages: Double DQN with experience replay and
a target network (as models/major/ddqn.py does for DRN).

The log is the replay memory; each step samples a minibatch uniformly with a seeded generator.
Target: y = r / scale + γ · Q_target(s', argmax_a' Q_online(s', a')) (0 after the session's last page); the
target network is the online one copied every `target_every` steps. Huber loss, Adam, gradient clipping.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.drn import DrnQNetwork
from models.mixer.rollout import TransitionLog


@dataclass(frozen=True)
class TrainConfig:
    gamma: float = 0.9
    learning_rate: float = 1e-3
    batch_size: int = 512
    steps: int = 2500
    target_every: int = 100
    huber_delta: float = 1.0
    grad_clip: float = 10.0
    seed: int = 0
    #: Train on r / scale with scale = mean logged reward / (1 − γ), so Q is O(1) from the start (Adam
    #: moves each weight by about the learning rate per step: an unscaled Q of ~20 takes thousands of
    #: steps to reach). The greedy placement does not depend on the scale.
    normalise_rewards: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.gamma < 1:
            raise ValueError(f"TrainConfig.gamma must be in [0, 1), got {self.gamma}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "target_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0 or self.seed < 0:
            raise ValueError("TrainConfig.steps and seed must be >= 0")
        if not (self.huber_delta > 0 and self.grad_clip > 0):
            raise ValueError("TrainConfig.huber_delta and grad_clip must be > 0")


class DoubleDqnTrainer:
    """Trains `network` in place on `log`."""

    def __init__(self, network: DrnQNetwork, log: TransitionLog, config: TrainConfig | None = None) -> None:
        self.config = cfg = config or TrainConfig()
        if len(log) == 0:
            raise ValueError("no logged page to train on")
        self.online = network.train()
        self.target = copy.deepcopy(network).eval()
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=cfg.learning_rate)
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xDD]))
        self.states = torch.from_numpy(log.states)
        self.actions = torch.from_numpy(log.actions)
        self.choice = torch.from_numpy(log.choice)
        mean = float(log.reward.mean())
        self.scale = mean / (1 - cfg.gamma) if cfg.normalise_rewards and mean > 0 else 1.0
        self.reward = torch.from_numpy(log.reward) / self.scale
        self.next = torch.from_numpy(log.next_index)
        self.step = 0

    def train_step(self) -> float:
        cfg = self.config
        i = torch.from_numpy(self.rng.integers(0, len(self.choice), size=cfg.batch_size))
        q = self.online(self.states[i], self.actions[i]).gather(1, self.choice[i].unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            nxt = self.next[i]
            alive = (nxt >= 0).to(q.dtype)
            n = nxt.clamp(min=0)
            s2, a2 = self.states[n], self.actions[n]
            best = self.online(s2, a2).argmax(dim=1)  # Double DQN: the online net picks,
            q2 = self.target(s2, a2).gather(1, best.unsqueeze(1)).squeeze(1)  # the target net evaluates
            y = self.reward[i] + cfg.gamma * alive * q2
        loss = nn.functional.smooth_l1_loss(q, y, beta=cfg.huber_delta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        if self.step % cfg.target_every == 0:
            self.target.load_state_dict(self.online.state_dict())
        return float(loss.detach())

    def run(self, steps: int | None = None, on_step: Callable[[int, float], None] | None = None) -> list[float]:
        """Train `steps` more steps (default config.steps); the losses."""
        losses = []
        for _ in range(self.config.steps if steps is None else steps):
            losses.append(self.train_step())
            if on_step is not None:
                on_step(self.step, losses[-1])
        self.online.eval()
        return losses
