"""Re-ranking latency on one core: DRN top-M (M = 50 of 100 candidates) + the pointer generator's N = 10
list, with the current and the perturbed generator interleaved (team draft), beside the plain DRN
ranker (W and W~ interleaved) and the parts alone. Wall and thread-CPU time are both reported: the
machine is shared, and CPU time is what the request itself cost.

With --learning it instead tunes an untrained generator online (DBGD on its own model_id through the
in-memory loop of drnflow/demo/inmemory.py) against a ListEnvironment truth and prints the exact
expected clicks of its greedy lists on held-out requests per window, beside greedy-by-score.

Run: .venv/bin/python bench/bench_reranker.py [--candidates 100 --top-m 50 --n 10 --iters 300]
     .venv/bin/python bench/bench_reranker.py --learning [--windows 30 --per-window 100]
"""

from __future__ import annotations

import os

# one core, set before numpy/torch load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import torch  # noqa: E402

from drnflow.demo.inmemory import run_loop  # noqa: E402
from models.dbgd import DbgdConfig, DbgdLearner  # noqa: E402
from models.drn import DrnConfig, DrnQNetwork  # noqa: E402
from models.ge.environment import EnvConfig, ListEnvironment, RequestBatch  # noqa: E402
from models.ge.pointer_generator import GeneratorConfig  # noqa: E402
from models.weights import FlatWeights, ParamSpec, flatten, layout_of  # noqa: E402
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


# --- online tuning of the generator (--learning) --------------------------------------------------
LEARN_ENV = EnvConfig(n_users=500, n_items=1000, n_shops=10, n_types=4, item_dim=8, user_dim=6, latent_dim=6,
                      candidates=20, list_size=8, trigger_prob=0.0)
SCORE_COL = LEARN_ENV.item_dim  # action features: item features, upstream score, shop id, type id


class _ScoreColumn:
    """A stand-in for DRN: Q = the upstream ranker score column (the generator gets the same score)."""

    state_dim, action_dim = LEARN_ENV.user_dim, LEARN_ENV.item_dim + 3

    def __init__(self, flat: FlatWeights, layout: Any) -> None:
        pass

    def q(self, state: npt.ArrayLike, actions: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return np.asarray(actions, dtype=np.float32)[:, SCORE_COL].copy()


def _actions(batch: RequestBatch, r: int) -> npt.NDArray[np.float32]:
    return np.hstack([batch.item_features[r], batch.ranker_score[r][:, None], batch.shop[r][:, None],
                      batch.item_type[r][:, None]]).astype(np.float32)


@dataclass
class _Step:
    impression: dict[str, Any]
    clicks: list[dict[str, Any]]


class _ListEnvSim:
    """ListEnvironment requests through the reranking ranker, clicks from the true list model."""

    def __init__(self, env: ListEnvironment, ranker: RerankingRanker, seed: int, gap_ms: int) -> None:
        self.env, self.ranker, self.gap_ms, self.steps = env, ranker, gap_ms, 0
        self.rng = np.random.default_rng(seed)

    def run(self, n: int) -> Iterator[_Step]:
        for _ in range(n):
            batch = self.env.make_requests(1, self.rng)
            acts = _actions(batch, 0)
            cands = [(str(int(i)), acts[j]) for j, i in enumerate(batch.candidates[0])]
            rid, t = f"b{self.steps}", T0 + self.steps * self.gap_ms
            self.steps += 1
            imp = self.ranker.rank(rid, str(int(batch.user[0])), t, batch.user_features[0], cands,
                                   LEARN_ENV.list_size)
            shown = [s["item_id"] for s in imp["slots"]]
            clicked = self.env.sample_clicks(batch.user[0], np.array([[int(i) for i in shown]]), self.rng)[0]
            yield _Step(imp, [{"request_id": rid, "item_id": i, "event_time": t + 1}
                              for i, c in zip(shown, clicked, strict=True) if c])


def learning(windows: int, per_window: int, alpha: float, eta: float, held_out: int) -> None:
    env = ListEnvironment(LEARN_ENV, seed=0)
    drn = Ranker(RankerConfig(model_id="drn"), scorer_factory=_ScoreColumn)
    drn.set_weights(np.zeros(1, np.float32), [ParamSpec("score_column", (1,))], 1)
    gen_cfg = GeneratorConfig(item_dim=LEARN_ENV.item_dim + 3, user_dim=LEARN_ENV.user_dim,
                              n_shops=LEARN_ENV.n_shops, n_types=LEARN_ENV.n_types, hidden=16, embedding=4)
    categories = ColumnCategories(shop_column=SCORE_COL + 1, type_column=SCORE_COL + 2,
                                  n_shops=LEARN_ENV.n_shops, n_types=LEARN_ENV.n_types)
    window_ms = 60_000
    reranker = GeReranker(RerankerConfig(top_m=LEARN_ENV.candidates, alpha=alpha, round_ms=window_ms),
                          gen_cfg, categories)
    major = initial_generator_record("ge", gen_cfg, seed=0, created_at=T0)
    reranker.apply_weights(major)
    rr = RerankingRanker(drn, reranker)
    learner = DbgdLearner("ge", DbgdConfig(alpha=alpha, eta=eta))
    learner.rebase(major)

    test = env.make_requests(held_out, np.random.default_rng(99))
    by_score = np.argsort(-test.ranker_score, axis=1, kind="stable")[:, :LEARN_ENV.list_size]
    score_value = float(env.true_value(test, by_score).mean())

    def served_value() -> float:
        lists = [reranker.rerank(test.user_features[r], _actions(test, r), test.ranker_score[r],
                                 LEARN_ENV.list_size).order for r in range(held_out)]
        return float(env.true_value(test, np.array(lists)).mean())

    print(f"learning: {windows} windows x {per_window} impressions, alpha={alpha} eta={eta}; "
          f"held-out true expected clicks, greedy-by-score = {score_value:.4f}")
    print(f"  {'window':>6}{'version':>8}{'E/C wins':>10}{'generator':>11}{'vs by-score':>13}")
    value0 = served_value()
    print(f"  {'start':>6}{reranker.version:>8}{'':>10}{value0:>11.4f}{value0 / score_value:>12.3f}x")

    def on_window(summary: dict[str, Any]) -> None:
        n = len(seen)
        seen.append(summary)
        if (n + 1) % max(1, windows // 10) == 0 or n + 1 == windows:
            v = served_value()
            wins = f"{summary['explore_wins']}/{summary['current_wins']}"
            print(f"  {n + 1:>6}{reranker.version:>8}{wins:>10}{v:>11.4f}{v / score_value:>12.3f}x", flush=True)

    seen: list[dict[str, Any]] = []
    sim = _ListEnvSim(env, rr, seed=1, gap_ms=window_ms // per_window)
    run_loop(sim, rr, learner, impressions=windows * per_window, window_ms=window_ms,  # type: ignore[arg-type]
             on_window=on_window)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--top-m", type=int, default=50)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--learning", action="store_true", help="tune a generator online instead of timing")
    p.add_argument("--windows", type=int, default=30)
    p.add_argument("--per-window", type=int, default=100)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--eta", type=float, default=0.5)
    p.add_argument("--held-out", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.learning:
        learning(args.windows, args.per_window, args.alpha, args.eta, args.held_out)
        return

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
