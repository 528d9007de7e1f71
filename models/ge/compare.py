"""Judge generators on the same held-out requests: by the evaluator, against the logged lists, by the
simulator's true expected clicks, by rule compliance, and by serving latency (one request at a time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from models.ge.environment import ListEnvironment, LoggedLists
from models.ge.list_generators import ListGenerator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward, rule_compliance


@dataclass(frozen=True)
class GeneratorResult:
    name: str
    requests: int
    evaluator_score: float  # mean predicted expected clicks
    reward: float  # mean evaluator + rule utilities
    better_pct: float  # % of requests where the evaluator scores the list above the logged one
    true_clicks: float  # mean exact expected clicks from the simulator
    true_better_pct: float  # % of requests where the true expected clicks beat the logged list's
    compliance_pct: float  # % of lists meeting every rule
    distinct_shops_pct: float
    no_adjacent_shop_pct: float
    type_share_pct: float
    latency_median_ms: float
    latency_p99_ms: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _summarise(name: str, env: ListEnvironment, log: LoggedLists, lists: torch.Tensor, reward: ListReward,
               latencies_ms: Sequence[float]) -> GeneratorResult:
    requests = RequestTensors.from_batch(log.requests)
    shown = torch.as_tensor(log.shown, dtype=torch.long)
    with torch.no_grad():
        score = reward.evaluator.score(requests, lists)
        logged_score = reward.evaluator.score(requests, shown)
        total = reward(requests, lists)
    true = env.true_value(log.requests, lists.numpy())
    logged_true = env.true_value(log.requests, log.shown)
    rows = torch.arange(len(requests)).unsqueeze(1)
    checks = rule_compliance(requests.shop[rows, lists], requests.item_type[rows, lists], reward.rules)
    lat = np.asarray(latencies_ms, dtype=np.float64) if len(latencies_ms) else np.zeros(1)
    pct = 100.0
    return GeneratorResult(
        name=name,
        requests=len(log),
        evaluator_score=float(score.mean()),
        reward=float(total.mean()),
        better_pct=pct * float((score > logged_score + 1e-6).float().mean()),
        true_clicks=float(true.mean()),
        true_better_pct=pct * float((true > logged_true + 1e-9).mean()),
        compliance_pct=pct * float(checks["all"].float().mean()),
        distinct_shops_pct=pct * float(checks["distinct_shops"].float().mean()),
        no_adjacent_shop_pct=pct * float(checks["no_adjacent_shop"].float().mean()),
        type_share_pct=pct * float(checks["type_share"].float().mean()),
        latency_median_ms=float(np.median(lat)),
        latency_p99_ms=float(np.percentile(lat, 99)),
    )


def compare_generators(
    env: ListEnvironment,
    log: LoggedLists,
    generators: Sequence[ListGenerator],
    reward: ListReward,
    on_request: Callable[[], None] | None = None,
) -> list[GeneratorResult]:
    """One row for the logged lists, then one per generator, serving each request alone and timed."""
    requests = RequestTensors.from_batch(log.requests)
    results = [_summarise("logged", env, log, torch.as_tensor(log.shown, dtype=torch.long), reward, [])]
    singles = [requests.index(torch.tensor([i])) for i in range(len(requests))]
    for gen in generators:
        lists, latencies = [], []
        for one in singles:
            start = time.perf_counter()
            lists.append(gen.generate(one))
            latencies.append(1000.0 * (time.perf_counter() - start))
            if on_request is not None:
                on_request()
        results.append(_summarise(gen.name, env, log, torch.stack(lists), reward, latencies))
    return results


def format_table(results: Sequence[GeneratorResult]) -> str:
    header = (f"{'generator':<20} {'eval score':>10} {'better%':>8} {'true clicks':>11} {'true better%':>12} "
              f"{'rules ok%':>9} {'p50 ms':>8} {'p99 ms':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        lat = ("-", "-") if r.name == "logged" else (f"{r.latency_median_ms:.2f}", f"{r.latency_p99_ms:.2f}")
        lines.append(f"{r.name:<20} {r.evaluator_score:>10.3f} {r.better_pct:>8.1f} {r.true_clicks:>11.3f} "
                     f"{r.true_better_pct:>12.1f} {r.compliance_pct:>9.1f} {lat[0]:>8} {lat[1]:>8}")
    return "\n".join(lines)
