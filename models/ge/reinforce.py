"""REINFORCE for the pointer generator against a frozen evaluator: advantage = reward of a sampled list
minus the reward of the list that was actually shown (from the log)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from models.ge.environment import LoggedLists
from models.ge.pointer_generator import PointerGenerator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward, RuleConfig, UtilityWeights


@dataclass(frozen=True)
class ReinforceConfig:
    steps: int = 300
    batch_size: int = 64
    samples_per_request: int = 4  # more lists per request beat more requests at equal cost
    learning_rate: float = 3e-3
    entropy_weight: float = 0.0  # weight of -log π(list) (a sampled entropy estimate)
    normalize_advantage: bool = True  # divide by the batch std: keeps the sign, steadies the step
    seed: int = 0
    utility_weights: UtilityWeights = field(default_factory=UtilityWeights)
    rules: RuleConfig = field(default_factory=RuleConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "samples_per_request"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReinforceConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"ReinforceConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.entropy_weight < 0:
            raise ValueError(f"ReinforceConfig.entropy_weight must be >= 0, got {self.entropy_weight}")


@dataclass
class ReinforceHistory:
    reward: list[float] = field(default_factory=list)  # mean reward of the sampled lists per step
    logged_reward: list[float] = field(default_factory=list)  # mean reward of the logged lists
    advantage: list[float] = field(default_factory=list)


def train_generator(
    generator: PointerGenerator,
    reward_fn: ListReward,
    log: LoggedLists,
    config: ReinforceConfig,
    progress: bool = False,
) -> ReinforceHistory:
    """Policy-gradient steps on random batches of logged requests."""
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    list_size = shown.shape[1]
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(generator.parameters(), lr=config.learning_rate)
    history = ReinforceHistory()
    k = config.samples_per_request
    steps = range(config.steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="generator steps", unit="step")
    generator.train()
    for _ in steps:
        rows = torch.randint(0, len(log), (config.batch_size,), generator=gen)
        batch = requests.index(rows)
        baseline = reward_fn(batch, shown[rows]).repeat_interleave(k)
        expanded = batch.repeat(k)
        lists, log_prob = generator.decode(expanded, list_size, sample=True, generator=gen)
        reward = reward_fn(expanded, lists)
        advantage = reward - baseline
        if config.normalize_advantage:
            advantage = advantage / (advantage.std() + 1e-6)
        loss = -(advantage * log_prob).mean() + config.entropy_weight * log_prob.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
        opt.step()
        history.reward.append(float(reward.mean()))
        history.logged_reward.append(float(baseline.mean()))
        history.advantage.append(float((reward - baseline).mean()))
    generator.eval()
    return history
