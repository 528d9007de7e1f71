"""GE trained on the pipeline's own log, judged by the simulator's truth (issue 17): per seed, DRN serves
simulated MovieLens traffic (DBGD-interleaved lists, a seeded network), the evaluator and the pointer
generator are trained on that log exactly as `drnflow ge train-evaluator --from-topics` / `train-generator`
train them (models/ge/from_log.py: the logged lists in the DRN feature space), and the served generator (the
re-ranker's greedy decoding of DRN's top N, operators/reranker.py) is compared with DRN's own top-N order and
with an untrained generator on the same held-out simulated requests: expected clicks per slot under the
position-based click model, paired per request, 95% intervals. With and without the rule utilities.

Run: .venv/bin/python bench/bench_ge_log.py [--seeds 3 --impressions 6000 --requests 1000 --steps 300]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

#: The logged lists are DRN's top 10 (the simulator's k): the generator re-orders them (M = N).
TOP_N = 10


def run_seed(seed: int, impressions: int, requests: int, steps: int, rule_weights: tuple[float, ...]
             ) -> dict[str, Any]:
    import torch

    from drnflow import datasets
    from drnflow.demo.inmemory import GreedyPolicy, GreedyRerankPolicy, make_ranker
    from models.drn import DrnScorer
    from models.ge.catalog_movielens import MovieLensCategories
    from models.ge.environment import split_by_time
    from models.ge.evaluator import (
        EvaluatorConfig,
        EvaluatorTrainConfig,
        ListEvaluator,
        auc,
        predict_logged,
        train_evaluator,
    )
    from models.ge.from_log import logged_lists
    from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
    from models.ge.reinforce import ReinforceConfig, train_generator
    from models.ge.utilities import ListReward, RuleConfig, UtilityWeights
    from models.initial_model import initial_drn_record
    from models.simulator import Simulator, SimulatorConfig, WorldConfig
    from models.simulator.evaluate import evaluate_policy, paired_difference
    from models.weights import parse_model_weights_record
    from operators.reranker import GeReranker, RerankerConfig, generator_record

    torch.set_num_threads(1)
    world = datasets.world(WorldConfig(seed=seed))
    major = initial_drn_record("drn", world.state_dim, world.action_dim, seed, created_at=0)
    ranker = make_ranker("drn", major, 0.1, seed)
    sim = Simulator(world, ranker, SimulatorConfig(seed=seed, click_model="pbm"))
    imps: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for step in sim.run(impressions):
        imps.append(step.impression)
        clicks += step.clicks
    scorer = DrnScorer(*parse_model_weights_record(major))
    cats = MovieLensCategories()
    data = logged_lists(imps, clicks, lambda _v, s, a: scorer.q(s, a), cats, 30 * 60_000)
    train, held = split_by_time(data.lists, 0.8)
    evaluator = ListEvaluator(EvaluatorConfig(world.action_dim, world.state_dim, cats.n_shops, cats.n_types),
                              seed=seed)
    train_evaluator(evaluator, train, EvaluatorTrainConfig(epochs=4, seed=seed))
    out: dict[str, Any] = {"seed": seed, "auc": auc(held.clicks, predict_logged(evaluator, held)),
                           "auc_q": auc(held.clicks, np.take_along_axis(held.requests.ranker_score, held.shown, 1))}
    gc = GeneratorConfig(world.action_dim, world.state_dim, cats.n_shops, cats.n_types)

    def judged(generator: PointerGenerator) -> Any:
        reranker = GeReranker(RerankerConfig(model_id="ge", top_m=TOP_N), gc, cats)
        reranker.apply_weights(generator_record("ge", generator, 1, 0))
        return evaluate_policy(GreedyRerankPolicy(ranker, reranker, TOP_N), world, requests, seed + 1000,
                               click_model_name="pbm")

    drn = evaluate_policy(GreedyPolicy(ranker), world, requests, seed + 1000, click_model_name="pbm")
    untrained = judged(PointerGenerator(gc, seed=seed))
    out["drn_ctr"] = drn.ctr
    out["untrained"] = paired_difference(untrained, drn)
    for w in rule_weights:
        weights = UtilityWeights(1.0, w, w, w)
        generator = PointerGenerator(gc, seed=seed)
        train_generator(generator, ListReward(evaluator, weights, RuleConfig()), train,
                        ReinforceConfig(steps=steps, seed=seed, utility_weights=weights))
        trained = judged(generator)
        out[f"rules {w}"] = {"ctr": trained.ctr, "vs_drn": paired_difference(trained, drn),
                             "vs_untrained": paired_difference(trained, untrained)}
    return out


def _interval(values: list[float]) -> str:
    from bench_learning import interval  # the benches' one t-interval (run from bench/, as `python -m bench` does)

    mean, half = interval(values)
    return f"{mean:+.4f} ± {half:.4f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--impressions", type=int, default=6000, help="logged DRN impressions per seed")
    p.add_argument("--requests", type=int, default=1000, help="held-out simulated requests judged per seed")
    p.add_argument("--steps", type=int, default=300, help="REINFORCE steps")
    args = p.parse_args()
    started = time.monotonic()
    rules = (0.0, 0.3)
    results = [run_seed(s, args.impressions, args.requests, args.steps, rules) for s in range(args.seeds)]
    print(f"GE from the log: {args.impressions} logged DRN impressions per seed, {args.requests} held-out requests, "
          f"pbm clicks; load average {os.getloadavg()[0]:.1f}")
    print(f"{'seed':>4} {'eval AUC':>9} {'Q AUC':>7} {'DRN CTR':>8}  "
          + "  ".join(f"{'trained - DRN (rules ' + str(w) + ')':>32}" for w in rules)
          + f"  {'untrained - DRN':>20}")
    for r in results:
        cells = "  ".join(f"{r[f'rules {w}']['vs_drn'][0]:+.4f} ± {r[f'rules {w}']['vs_drn'][1]:.4f}".rjust(32)
                          for w in rules)
        print(f"{r['seed']:>4} {r['auc']:>9.4f} {r['auc_q']:>7.4f} {r['drn_ctr']:>8.4f}  {cells}  "
              f"{r['untrained'][0]:+.4f} ± {r['untrained'][1]:.4f}".rjust(20))
    for w in rules:
        print(f"over seeds, rules {w}: trained - DRN top-N {_interval([r[f'rules {w}']['vs_drn'][0] for r in results])}"
              f", trained - untrained {_interval([r[f'rules {w}']['vs_untrained'][0] for r in results])} (per-slot "
              f"expected clicks; 95% t-interval over seeds), better than DRN on "
              f"{sum(r[f'rules {w}']['vs_drn'][0] > 0 for r in results)}/{len(results)} seeds")
    print(f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
