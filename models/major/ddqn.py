"""Dueling Double DQN training of the DRN network on logged transitions (models/transitions.py).

Experience replay: the logged range is the replay memory; each step samples a minibatch of (impression,
slot) transitions uniformly with a seeded numpy generator. Double DQN target:
y = r + γ · Q_target(s', argmax_a' Q_online(s', a')) over the next request's shown slots (0 when
terminal); the target network is a copy of the online one, switched every `target_every` steps.
Warm start: the caller passes the network to train (the current base weights, or a fresh one).

Checkpoints hold the step, both networks, the optimiser and the generator state, so a resumed run ends
bit-identical to an uninterrupted one on CPU (on GPU, up to the nondeterminism of CUDA kernels).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.drn import DrnQNetwork
from models.transitions import TransitionSet


@dataclass(frozen=True)
class DdqnConfig:
    """Training of one major update. γ = 0.4 is DRN's future-reward discount."""

    gamma: float = 0.4
    learning_rate: float = 1e-3
    batch_size: int = 256
    steps: int = 2000
    target_every: int = 200
    huber_delta: float = 1.0
    grad_clip: float = 10.0
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not 0 <= self.gamma < 1:
            raise ValueError(f"DdqnConfig.gamma must be in [0, 1), got {self.gamma}")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"DdqnConfig.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "target_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"DdqnConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"DdqnConfig.steps must be >= 0, got {self.steps}")
        if not self.huber_delta > 0 or not self.grad_clip > 0:
            raise ValueError("DdqnConfig.huber_delta and grad_clip must be > 0")
        if self.seed < 0:
            raise ValueError(f"DdqnConfig.seed must be >= 0, got {self.seed}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"DdqnConfig.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")


def pick_device(name: str) -> torch.device:
    """'auto': the GPU when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def data_fingerprint(data: TransitionSet, rows: npt.NDArray[np.int64]) -> str:
    """What a checkpoint was trained on: resuming onto other data is refused."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(rows).tobytes())
    for rid in data.request_ids:
        h.update(rid.encode())
        h.update(b"\0")
    h.update(data.clicks.tobytes())
    h.update(data.states[:: max(1, data.n_impressions // 64)].tobytes())
    return h.hexdigest()[:32]


class DdqnTrainer:
    """Trains `network` in place on the transitions of `rows` (rows of `data`)."""

    def __init__(self, data: TransitionSet, rows: npt.NDArray[np.int64], network: DrnQNetwork,
                 config: DdqnConfig | None = None) -> None:
        self.config = cfg = config or DdqnConfig()
        cfg_net = network.config
        if (cfg_net.state_dim, cfg_net.action_dim) != (data.state_dim, data.action_dim):
            raise ValueError(
                f"the network takes (state, action) dims ({cfg_net.state_dim}, {cfg_net.action_dim}), "
                f"the logged features are ({data.state_dim}, {data.action_dim})"
            )
        self.device = pick_device(cfg.device)
        self.online = network.to(self.device).train()
        self.target = copy.deepcopy(self.online).eval()
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=cfg.learning_rate)
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.last_loss = float("nan")
        self.fingerprint = data_fingerprint(data, rows)
        self._pairs = data.pairs(rows)
        if self._pairs.shape[0] == 0:
            raise ValueError("no transition to train on in the given rows")
        dev = self.device
        self._states = torch.from_numpy(data.states).to(dev)
        self._actions = torch.from_numpy(data.actions).to(dev)
        self._mask = torch.from_numpy(data.mask).to(dev)
        self._rewards = torch.from_numpy(data.rewards()).to(dev)
        self._next = torch.from_numpy(data.next_index).to(dev)

    @property
    def n_transitions(self) -> int:
        return int(self._pairs.shape[0])

    def train_step(self) -> float:
        """One minibatch update; switches the target network every `target_every` steps."""
        cfg = self.config
        pick = self._pairs[self.rng.integers(0, self._pairs.shape[0], size=cfg.batch_size)]
        idx = torch.from_numpy(pick).to(self.device)
        i, j = idx[:, 0], idx[:, 1]
        q_all = self.online(self._states[i], self._actions[i], self._mask[i])
        q = q_all.gather(1, j.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            nxt = self._next[i]
            alive = (nxt >= 0).to(q.dtype)
            n = nxt.clamp(min=0)
            s2, a2, m2 = self._states[n], self._actions[n], self._mask[n]
            best = DrnQNetwork.masked_argmax(self.online(s2, a2, m2), m2)  # Double DQN: online picks
            q2 = self.target(s2, a2, m2).gather(1, best.unsqueeze(1)).squeeze(1)  # target evaluates
            y = self._rewards[i, j] + cfg.gamma * alive * q2
        loss = nn.functional.smooth_l1_loss(q, y, beta=cfg.huber_delta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        if self.step % cfg.target_every == 0:
            self.target.load_state_dict(self.online.state_dict())
        self.last_loss = float(loss.detach())
        return self.last_loss

    def run(self, steps: int | None = None, checkpoint: Path | None = None, progress: bool = False,
            on_step: Callable[[int, float], None] | None = None) -> None:
        """Train up to `steps` total steps (default config.steps), checkpointing every
        `checkpoint_every` steps and at the end when `checkpoint` is given."""
        total = self.config.steps if steps is None else steps
        from tqdm import tqdm

        bar = tqdm(total=total, initial=self.step, unit="step", disable=not progress, desc="ddqn")
        try:
            while self.step < total:
                loss = self.train_step()
                bar.update(1)
                if self.step % 50 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}")
                if on_step is not None:
                    on_step(self.step, loss)
                if checkpoint is not None and self.step % self.config.checkpoint_every == 0:
                    self.save(checkpoint)
        finally:
            bar.close()
        if checkpoint is not None:
            self.save(checkpoint)

    # --- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "config": asdict(self.config),
            "fingerprint": self.fingerprint,
            "last_loss": self.last_loss,
        }

    def save(self, path: Path) -> None:
        """Write the checkpoint atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """Resume from a checkpoint of the same data and training settings."""
        st = torch.load(path, map_location=self.device, weights_only=False)
        if st["fingerprint"] != self.fingerprint:
            raise ValueError(f"checkpoint {path} was trained on other data; delete it to start over")
        mine = {k: v for k, v in asdict(self.config).items() if k not in ("steps", "device")}
        theirs = {k: v for k, v in st["config"].items() if k not in ("steps", "device")}
        if mine != theirs:
            raise ValueError(f"checkpoint {path} was trained with other settings: {theirs}")
        self.online.load_state_dict(st["online"])
        self.target.load_state_dict(st["target"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.rng.bit_generator.state = st["rng"]
        self.step = int(st["step"])
        self.last_loss = float(st["last_loss"])
