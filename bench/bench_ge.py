"""Serving latency of the GE generators for M = 50 candidates, N = 10 slots on one core.

Run: .venv/bin/python bench/bench_ge.py [--dir <state>/ge] [--requests 200]
Latency does not depend on how well the models are trained, so with no checkpoints in --dir the bench
uses freshly initialised models of the default shapes (it says which)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from models.ge.environment import EnvConfig, ListEnvironment
from models.ge.evaluator import ListEvaluator
from models.ge.pipeline import (
    EVALUATOR_FILE,
    GENERATOR_FILE,
    ServingConfig,
    evaluator_config_for,
    generator_config_for,
    load_evaluator,
    load_generator,
    standard_generators,
)
from models.ge.pointer_generator import PointerGenerator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward, RuleConfig, UtilityWeights
from operators.paths import state_dir


def _models(env: ListEnvironment, directory: Path) -> tuple[ListEvaluator, PointerGenerator, ListReward, str]:
    ev_path, gen_path = directory / EVALUATOR_FILE, directory / GENERATOR_FILE
    if ev_path.exists() and gen_path.exists():
        setup, evaluator = load_evaluator(ev_path)
        if (setup.env.candidates, setup.env.list_size) == (env.config.candidates, env.config.list_size):
            generator, weights, rules = load_generator(gen_path)
            return evaluator, generator, ListReward(evaluator, weights, rules), f"checkpoints in {directory}"
    evaluator = ListEvaluator(evaluator_config_for(env), seed=0).eval()
    generator = PointerGenerator(generator_config_for(env), seed=0).eval()
    return evaluator, generator, ListReward(evaluator, UtilityWeights(), RuleConfig()), "untrained models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=state_dir() / "ge")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = EnvConfig(candidates=50, list_size=10)
    env = ListEnvironment(config, seed=0)
    evaluator, generator, reward, source = _models(env, args.dir)
    n = config.list_size
    serving = ServingConfig(k=args.k, beam_width=args.beam_width)
    generators = standard_generators(evaluator, generator, reward, n, serving)
    batch = env.make_requests(args.requests, np.random.default_rng(123))
    singles = [RequestTensors.from_batch(batch.take([i])) for i in range(len(batch))]
    print(f"GE serving latency, M={config.candidates} N={n}, 1 thread, {len(singles)} requests, {source}")
    # CPU time of this thread beside wall time: on a shared, loaded machine wall time includes waiting for
    # a core, CPU time does not.
    print(f"{'generator':<20} {'median ms':>10} {'p99 ms':>10} {'cpu med ms':>11} {'cpu p99 ms':>11} "
          f"{'x pointer':>10}")
    medians: dict[str, float] = {}
    for gen in generators:
        for one in singles[:10]:  # warm-up
            gen.generate(one)
        times, cpu = [], []
        for one in singles:
            start, start_cpu = time.perf_counter(), time.thread_time()
            gen.generate(one)
            times.append(1000.0 * (time.perf_counter() - start))
            cpu.append(1000.0 * (time.thread_time() - start_cpu))
        medians[gen.name] = float(np.median(times))
        ratio = medians[gen.name] / medians[generators[0].name]
        print(f"{gen.name:<20} {medians[gen.name]:>10.3f} {np.percentile(times, 99):>10.3f} "
              f"{np.median(cpu):>11.3f} {np.percentile(cpu, 99):>11.3f} {ratio:>10.2f}")


if __name__ == "__main__":
    main()
