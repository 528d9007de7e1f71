"""Simulated impressions per second, in memory (no Kafka): the simulator with each stand-alone policy,
and the parts of one step measured side by side (candidates, features, ranking, clicks)."""

from __future__ import annotations

import statistics
import time

import numpy as np


def _rate(fn, n: int, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    from drnflow import datasets
    from models.simulator import Simulator, SimulatorConfig
    from models.simulator.click_models import click_model
    from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy

    world = datasets.world()
    users = {u: i for i, u in enumerate(world.ml.user_ids)}
    n = 2000
    print(f"MovieLens-100K world: {world.ml.n_users} users, {world.ml.n_items} items, "
          f"{world.config.n_candidates} candidates/request, k=10; median of 3 runs of {n}")
    base = None
    for name, policy in [("random", RandomPolicy()), ("popular", PopularPolicy()),
                         ("oracle", OraclePolicy(world.grades, users, world.item_index))]:
        sim = Simulator(world, policy, SimulatorConfig(seed=0))
        rate = _rate(lambda m, s=sim: list(s.run(m)), n)
        base = base or rate
        print(f"simulator, policy {name:<8} {rate:9.0f} impressions/s  ({rate / base:.2f}x random)")
    rng = np.random.default_rng(0)
    cands = world.candidates(rng)
    parts = {
        "candidates": lambda m: [world.candidates(rng) for _ in range(m)],
        "features": lambda m: [world.features(1, cands) for _ in range(m)],
        "click model (navigational)": lambda m: [click_model("navigational").sample([2] * 10, rng)
                                                 for _ in range(m)],
    }
    for name, fn in parts.items():
        print(f"part: {name:<28} {_rate(fn, n):9.0f} /s")


if __name__ == "__main__":
    main()
