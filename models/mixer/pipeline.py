"""The mixer experiment from seeds: per seed, log an exploring mixer in the environment, train the Dueling
DQN off-policy on the logs, and keep the network; checkpoints hold the setup and every seed's network.

Seed k uses environment seed k (its ads and user traits), log streams LOG_STREAM + 100·k + round,
exploration and minibatch seeds k, network init seed k, and evaluation stream EVAL_STREAM + k (never
a logged one). Training runs `rounds` rounds: round 0 logs a stratified random mixer (ε = 1), every
later round logs ε-greedy around the network trained so far; after each round the network trains on
all logs so far (Double DQN, replay, target network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.drn import DrnConfig, DrnQNetwork
from models.mixer.environment import MixerConfig, MixerEnvironment
from models.mixer.network import mixer_network
from models.mixer.policies import EpsilonGreedy, Mixer, QMixer, RandomMixer
from models.mixer.rollout import TransitionLog, rollout
from models.mixer.trainer import DoubleDqnTrainer, TrainConfig
from models.simulator.world import World

LOG_STREAM = 10_000
EVAL_STREAM = 20_000
FORMAT = "drnflow-mixer/1"


class CheckpointError(ValueError):
    """A checkpoint that is not a mixer checkpoint, is corrupt, or does not fit the environment."""


@dataclass(frozen=True)
class MixerSetup:
    env: MixerConfig = field(default_factory=MixerConfig)
    rounds: int = 2
    sessions_per_round: int = 3000
    epsilon: float = 0.2
    hidden: int = 32
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.sessions_per_round < 1:
            raise ValueError(f"sessions per round must be >= 1, got {self.sessions_per_round}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.hidden < 2:
            raise ValueError(f"hidden must be >= 2, got {self.hidden}")

    @staticmethod
    def from_dict(d: dict[str, Any]) -> MixerSetup:
        return MixerSetup(**{**d, "env": MixerConfig.from_dict(d["env"]), "train": TrainConfig(**d["train"])})


@dataclass
class SeedRun:
    seed: int
    network: DrnQNetwork
    logged_pages: int
    final_loss: float


def train_seed(world: World, setup: MixerSetup, seed: int,
               progress: Callable[[str], None] | None = None) -> SeedRun:
    env = MixerEnvironment(world, setup.env, seed=seed)
    net = mixer_network(env.state_dim, env.action_dim, setup.hidden, seed=seed)
    logs: list[TransitionLog] = []
    loss = float("nan")
    for r in range(setup.rounds):
        mixer: Mixer = RandomMixer(seed * 100 + r) if r == 0 else \
            EpsilonGreedy(QMixer(net), setup.epsilon, seed * 100 + r)
        _, log = rollout(env, mixer, setup.sessions_per_round, LOG_STREAM + 100 * seed + r, log=True)
        assert log is not None
        logs.append(log)
        data = TransitionLog.concat(logs)
        cfg = TrainConfig(**{**asdict(setup.train), "seed": seed * 100 + r})
        losses = DoubleDqnTrainer(net, data, cfg).run()
        loss = sum(losses[-50:]) / max(len(losses[-50:]), 1)
        if progress is not None:
            progress(f"seed {seed} round {r + 1}/{setup.rounds}: logged {len(log)} pages with {mixer.name}, "
                     f"trained {cfg.steps} steps on {len(data)} (loss {loss:.4f})")
    return SeedRun(seed, net.eval(), len(TransitionLog.concat(logs)), loss)


def save_checkpoint(path: Path, setup: MixerSetup, runs: list[SeedRun]) -> None:
    """Architecture + weights per seed + the setup, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "setup": asdict(setup),
                "seeds": [{"seed": r.seed, "architecture": r.network.config.to_json(),
                           "state_dict": r.network.state_dict(), "logged_pages": r.logged_pages,
                           "final_loss": r.final_loss} for r in runs]}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> tuple[MixerSetup, dict[int, DrnQNetwork]]:
    """The setup and the network of each trained seed; CheckpointError on anything else."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds on a corrupt file
        raise CheckpointError(f"{path} is not a readable mixer checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a mixer checkpoint (format {FORMAT!r} expected)")
    try:
        setup = MixerSetup.from_dict(ckpt["setup"])
        nets = {}
        for entry in ckpt["seeds"]:
            net = DrnQNetwork(DrnConfig.from_json(entry["architecture"]))
            net.load_state_dict(entry["state_dict"])
            nets[int(entry["seed"])] = net.eval()
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is a damaged mixer checkpoint: {str(e).splitlines()[0]}") from None
    return setup, nets


def check_fits(net: DrnQNetwork, env: MixerEnvironment) -> None:
    cfg = net.config
    if (cfg.state_dim, cfg.action_dim) != (env.state_dim, env.action_dim):
        raise CheckpointError(f"the checkpoint's network takes (state, action) dims ({cfg.state_dim}, "
                              f"{cfg.action_dim}), this environment has ({env.state_dim}, {env.action_dim})")
