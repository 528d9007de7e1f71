"""Re-ranking latency on one core: DRN top-M (M = 50 of 100 candidates) + the pointer generator's N = 10
list, with the current and the perturbed generator interleaved (team draft), beside the plain DRN
ranker (W and W~ interleaved) and the parts alone. Wall and thread-CPU time are both reported: the
machine is shared, and CPU time is what the request itself cost.

Run: .venv/bin/python bench/bench_reranker.py [--candidates 100 --top-m 50 --n 10 --iters 300]
"""

from __future__ import annotations

import os

# one core, set before numpy/torch load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.drn import DrnConfig, DrnQNetwork  # noqa: E402
from models.ge.generator import GeneratorConfig  # noqa: E402
from models.weights import flatten, layout_of  # noqa: E402
from operators.ranker import Ranker, RankerConfig  # noqa: E402
from operators.reranker import (  # noqa: E402
    ColumnCategories,
    GeReranker,
    RerankerConfig,
    RerankingRanker,
    initial_generator_record,
)

T0 = 1_700_000_000_000
STATE_DIM, ACTION_DIM = 16, 32  # the MovieLens world's feature sizes (models/simulator/world.py)
N_SHOPS, N_TYPES = 10, 19


def _side_by_side(fns: dict[str, Callable[[int], object]], iters: int, warmup: int
                  ) -> dict[str, tuple[list[float], list[float]]]:
    """Run the contenders alternately, so load drift on the shared machine hits all alike; (wall, cpu) ms."""
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    for i in range(warmup + iters):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.thread_time()
            fn(i)
            wall, cpu = time.perf_counter() - t, time.thread_time() - c
            if i >= warmup:
                times[name][0].append(1000.0 * wall)
                times[name][1].append(1000.0 * cpu)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--top-m", type=int, default=50)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)

    drn_cfg = DrnConfig(STATE_DIM, ACTION_DIM, seed=1)
    net = DrnQNetwork(drn_cfg)
    drn = Ranker(RankerConfig(model_id="drn"))
    drn.set_weights(flatten(net), layout_of(net), 1)
    gen_cfg = GeneratorConfig(item_dim=ACTION_DIM, user_dim=STATE_DIM, n_shops=N_SHOPS, n_types=N_TYPES)
    categories = ColumnCategories(shop_column=ACTION_DIM - 2, type_column=ACTION_DIM - 1,
                                  n_shops=N_SHOPS, n_types=N_TYPES)
    reranker = GeReranker(RerankerConfig(top_m=args.top_m), gen_cfg, categories)
    reranker.apply_weights(initial_generator_record("ge", gen_cfg, seed=3, created_at=T0))
    rr = RerankingRanker(drn, reranker)

    rng = np.random.default_rng(0)
    n_requests = 64
    states = rng.standard_normal((n_requests, STATE_DIM)).astype(np.float32)
    actions = rng.standard_normal((n_requests, args.candidates, ACTION_DIM)).astype(np.float32)
    actions[:, :, -2] = rng.integers(0, N_SHOPS, size=(n_requests, args.candidates))
    actions[:, :, -1] = rng.integers(0, N_TYPES, size=(n_requests, args.candidates))
    cands = [[(f"i{j}", a[j]) for j in range(args.candidates)] for a in actions]
    tops = [rr.top_m(states[r], actions[r], None) for r in range(n_requests)]
    rr.rank("warm", "u", T0, states[0], cands[0], args.n)  # builds the round's explore generator

    def drn_rank(i: int) -> object:
        r = i % n_requests
        return drn.rank(f"q{i}", "u", T0, states[r], cands[r], args.n)

    def drn_top_m(i: int) -> object:
        r = i % n_requests
        return rr.top_m(states[r], actions[r], None)

    def one_generator(i: int) -> object:
        r = i % n_requests
        top, q = tops[r]
        return reranker.rerank(states[r], actions[r][top], q, args.n)

    def reranked(i: int) -> object:
        r = i % n_requests
        return rr.rank(f"q{i}", "u", T0, states[r], cands[r], args.n)

    fns: dict[str, Callable[[int], object]] = {
        "drn rank (W, W~ interleaved)": drn_rank,
        f"drn top-{args.top_m} only": drn_top_m,
        f"one generator, N={args.n}": one_generator,
        "top-M + 2 generators + team draft": reranked,
    }
    times = _side_by_side(fns, args.iters, args.warmup)
    base = float(np.median(times["drn rank (W, W~ interleaved)"][0]))
    print(f"candidates={args.candidates} M={args.top_m} N={args.n} iters={args.iters} torch threads=1 "
          f"(generator hidden={gen_cfg.hidden})")
    print(f"  {'path':<36}{'median ms':>10}{'p99 ms':>9}{'cpu median':>12}{'cpu p99':>9}{'vs drn':>8}")
    for name, (wall, cpu) in times.items():
        med = float(np.median(wall))
        print(f"  {name:<36}{med:>10.2f}{np.percentile(wall, 99):>9.2f}{np.median(cpu):>12.2f}"
              f"{np.percentile(cpu, 99):>9.2f}{med / base:>7.1f}x")


if __name__ == "__main__":
    main()
