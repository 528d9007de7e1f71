"""The ads/organic mixer on the simulator: fixed placement, the greedy per-slot rule and the trained
Dueling DQN on held-out sessions, 3 seeds, 95% intervals; with --pareto also the revenue / engagement
trade-off of the fixed-ad-count family, greedy and DQNs trained at revenue weights 0.5 and 2 (on
--pareto-seeds seeds, default 1: two trainings per seed).

Run: .venv/bin/python bench/bench_mixer.py [--dir <state>/mixer] [--seeds 3] [--sessions 2000] [--pareto]
With a checkpoint in --dir (from `drnflow mixer train`) it evaluates that; otherwise it trains the
default setup first (about a minute per seed on one core) and says so."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from models.mixer.evaluate import evaluate_seeds, format_table, gain, interval
from models.mixer.pipeline import MixerSetup, load_checkpoint, train_seed
from models.mixer.policies import FixedPlacement, GreedyPerSlot, Mixer, QMixer
from models.mixer.rollout import rollout
from operators.paths import state_dir


def _networks(world: object, directory: Path, seeds: list[int]) -> tuple[MixerSetup, dict[int, torch.nn.Module], str]:
    path = directory / "mixer.pt"
    if path.exists():
        setup, nets = load_checkpoint(path)
        if all(s in nets for s in seeds):
            return setup, nets, f"checkpoint {path}"
    setup = MixerSetup()
    nets = {s: train_seed(world, setup, s).network for s in seeds}  # type: ignore[arg-type]
    return setup, nets, "trained now (default setup; no checkpoint for these seeds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=state_dir() / "mixer")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--pareto", action="store_true",
                        help="also the revenue-weight sweep (trains 2 more DQNs per Pareto seed)")
    parser.add_argument("--pareto-seeds", type=int, default=1, help="seeds of the sweep (default %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from drnflow import datasets
    from models.mixer.environment import MixerEnvironment

    started = time.perf_counter()
    world = datasets.world()
    seeds = list(range(args.seeds))
    setup, nets, source = _networks(world, args.dir, seeds)
    extra: list[Mixer] = [FixedPlacement((), "no ads (ref.)"), FixedPlacement((1,), "fixed 1 (ref.)")]
    results = evaluate_seeds(world, setup, nets, seeds, args.sessions, extra=extra)  # type: ignore[arg-type]
    print(f"mixer: {args.sessions} held-out sessions per seed, networks: {source}, "
          f"w_revenue={setup.env.w_revenue:g} w_engagement={setup.env.w_engagement:g}")
    print(format_table(results, len(seeds)))
    for over in (results[0].name, "greedy per-slot"):
        g = gain(results, over=over)
        m, h = interval(g)
        print(f"DQN − {over}, combined: {m:+.2f} ± {h:.2f} per session; per seed "
              + ", ".join(f"{x:+.2f}" for x in g))
    if args.pareto:
        p_seeds = seeds[: args.pareto_seeds]
        print(f"\nPareto: revenue / engagement per session (mean over seed(s) {p_seeds}); "
              f"a DQN trained at each w_revenue")
        family: list[Mixer] = [FixedPlacement(()), FixedPlacement((5,)), FixedPlacement((3,)), FixedPlacement((1,)),
                               FixedPlacement((3, 7)), FixedPlacement((1, 3)), GreedyPerSlot()]
        points: dict[str, list[tuple[float, float, float]]] = {}
        for seed in p_seeds:
            env = MixerEnvironment(world, setup.env, seed=seed)
            mixers = [*family, QMixer(nets[seed], f"DQN w_rev={setup.env.w_revenue:g}")]  # type: ignore[arg-type]
            for w in (0.5, 2.0):
                s_w = replace(setup, env=replace(setup.env, w_revenue=w))
                mixers.append(QMixer(train_seed(world, s_w, seed).network, f"DQN w_rev={w:g}"))
            for m in mixers:
                t, _ = rollout(env, m, args.sessions, 20_000 + seed)
                points.setdefault(m.name, []).append((t.revenue.mean(), t.engagement.mean(), t.length.mean()))
        print(f"{'mixer':<18} {'revenue':>9} {'engagement':>11} {'length':>8}")
        for name, pts in points.items():
            r, e, n = (sum(p[i] for p in pts) / len(pts) for i in range(3))
            print(f"{name:<18} {r:>9.2f} {e:>11.2f} {n:>8.2f}")
    print(f"wall {time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
