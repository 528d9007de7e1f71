"""List utilities and the reward: the evaluator's score plus rule utilities that need no gradient
(distinct shops, no two consecutive items from one shop, a minimum exposure share of a type)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.ge.evaluator import ListEvaluator
from models.ge.tensors import RequestTensors


@dataclass(frozen=True)
class RuleConfig:
    """Business rules a list should satisfy (compliance) and that the reward's utilities measure."""

    min_distinct_shops: int = 8
    promoted_type: int = 0
    min_type_share: float = 0.2

    def __post_init__(self) -> None:
        if self.min_distinct_shops < 1:
            raise ValueError(f"RuleConfig.min_distinct_shops must be >= 1, got {self.min_distinct_shops}")
        if self.promoted_type < 0:
            raise ValueError(f"RuleConfig.promoted_type must be >= 0, got {self.promoted_type}")
        if not 0.0 < self.min_type_share <= 1.0:
            raise ValueError(f"RuleConfig.min_type_share must be in (0, 1], got {self.min_type_share}")


@dataclass(frozen=True)
class UtilityWeights:
    """Weights of the reward's utilities: reward = Σ weight · utility."""

    evaluator: float = 1.0
    distinct_shops: float = 0.3
    no_adjacent_shop: float = 0.3
    type_share: float = 0.3

    def __post_init__(self) -> None:
        for name in ("evaluator", "distinct_shops", "no_adjacent_shop", "type_share"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"UtilityWeights.{name} must be a finite number >= 0, got {value}")


def distinct_shops(shops: torch.Tensor) -> torch.Tensor:
    """Number of distinct shops per list (B,)."""
    ordered = torch.sort(shops, dim=1).values
    return 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(dim=1)


def adjacent_same_shop(shops: torch.Tensor) -> torch.Tensor:
    """Number of neighbouring pairs from one shop per list (B,)."""
    return (shops[:, 1:] == shops[:, :-1]).sum(dim=1)


def type_share(types: torch.Tensor, promoted_type: int) -> torch.Tensor:
    return (types == promoted_type).float().mean(dim=1)


def rule_utilities(shops: torch.Tensor, types: torch.Tensor, rules: RuleConfig) -> dict[str, torch.Tensor]:
    """Each utility in [0, 1] per list (B,); 1 means the rule is fully met."""
    n = shops.shape[1]
    return {
        "distinct_shops": distinct_shops(shops).float() / n,
        "no_adjacent_shop": 1.0 - adjacent_same_shop(shops).float() / max(n - 1, 1),
        "type_share": torch.clamp(type_share(types, rules.promoted_type) / rules.min_type_share, max=1.0),
    }


def rule_compliance(shops: torch.Tensor, types: torch.Tensor, rules: RuleConfig) -> dict[str, torch.Tensor]:
    """Whether each list meets each rule (B,) bool, and all of them."""
    checks = {
        "distinct_shops": distinct_shops(shops) >= min(rules.min_distinct_shops, shops.shape[1]),
        "no_adjacent_shop": adjacent_same_shop(shops) == 0,
        "type_share": type_share(types, rules.promoted_type) >= rules.min_type_share - 1e-9,
    }
    checks["all"] = checks["distinct_shops"] & checks["no_adjacent_shop"] & checks["type_share"]
    return checks


class ListReward:
    """reward(list) = w_eval · evaluator score + Σ w_rule · rule utility, with a frozen evaluator."""

    def __init__(self, evaluator: ListEvaluator, weights: UtilityWeights, rules: RuleConfig) -> None:
        self.evaluator = evaluator.eval()
        for p in self.evaluator.parameters():
            p.requires_grad_(False)
        self.weights = weights
        self.rules = rules

    @torch.no_grad()
    def __call__(self, requests: RequestTensors, lists: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(len(requests)).unsqueeze(1)
        reward = self.weights.evaluator * self.evaluator.score(requests, lists)
        utils = rule_utilities(requests.shop[rows, lists], requests.item_type[rows, lists], self.rules)
        for name, value in utils.items():
            reward = reward + getattr(self.weights, name) * value
        return reward
