"""`drnflow oltr-sim`: DBGD, MGD and PDGD on real LETOR data (MSLR-WEB sample), no Kafka, next to the
numbers of Oosterhuis & de Rijke (CIKM 2018, Table 3)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError

CASCADES = ("perfect", "navigational", "informational")
#: Oosterhuis & de Rijke, CIKM 2018, Table 3: offline NDCG@10 on MSLR-WEB10k after 10,000 impressions, linear
#: rankers (MGD with 49 candidates), 125 runs.
PAPER = {"dbgd": {"perfect": 0.331, "navigational": 0.319, "informational": 0.299},
         "mgd": {"perfect": 0.333, "navigational": 0.321, "informational": 0.318},
         "pdgd": {"perfect": 0.427, "navigational": 0.406, "informational": 0.368}}
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 11: 2.20,
         12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 19: 2.09, 24: 2.06, 29: 2.05}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "oltr-sim",
        help="DBGD, MGD and PDGD with a linear ranker on the MSLR-WEB sample under the cascade click models",
        description="Online LTR check (Schuth et al. 2016; Oosterhuis & de Rijke 2018 protocol): zero "
        "init, delta=1, 10 results; DBGD (team-draft interleaving, eta=0.01), MGD (team-draft multileaving of "
        "49 candidates, the mean of the winners, eta=0.01), PDGD (Plackett-Luce sampled lists, debiased "
        "pairwise gradient, eta=0.1). Reports offline NDCG@10 on the test file, online discounted cumulative "
        "NDCG@10 (gamma=0.9995), and each learner's gain over DBGD with its 95%% interval next to the paper's.",
    )
    p.add_argument("--learner", default="dbgd", choices=["dbgd", "mgd", "pdgd", "all"],
                   help="online learner, or all three side by side (default %(default)s)")
    p.add_argument("--explore-lists", type=int, default=49, metavar="N",
                   help="MGD's explore candidates per impression (default %(default)s, the paper's)")
    p.add_argument("--click-model", default="all", choices=[*CASCADES, "pbm", "all"],
                   help="click model, or all three cascades (default %(default)s)")
    p.add_argument("--impressions", type=int, default=10_000, help="default %(default)s")
    p.add_argument("--runs", type=int, default=3, help="runs per click model, seeds seed..seed+runs-1")
    p.add_argument("--seed", type=int, default=1, help="default %(default)s")
    p.add_argument("--delta", type=float, default=1.0, help="exploration step δ (default %(default)s)")
    p.add_argument("--eta", type=float, default=None,
                   help="learning rate η (default: the paper's, 0.01 for DBGD/MGD and 0.1 for PDGD)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="also record offline NDCG every N impressions (in the JSON)")
    p.add_argument("--json", type=Path, default=None, help="write all runs and means to this file")
    p.set_defaults(func=cmd_oltr)


def _interval(xs: Any) -> tuple[float, float]:
    import numpy as np

    x = np.asarray(xs, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()), float("nan")
    t = T_975.get(x.size - 1, 1.96)
    return float(x.mean()), float(t * x.std(ddof=1) / np.sqrt(x.size))


def cmd_oltr(args: argparse.Namespace) -> int:
    import numpy as np

    from drnflow.datasets import DataUnavailable, mslr_sample
    from models.oltr import LEARNERS, OltrConfig, offline_ndcg, run_oltr

    if args.runs < 1:
        raise CommandError(f"--runs must be >= 1, got {args.runs}")
    models = list(CASCADES) if args.click_model == "all" else [args.click_model]
    learners = list(LEARNERS) if args.learner == "all" else [args.learner]
    try:
        configs = [
            OltrConfig(click_model=m, impressions=args.impressions, delta=args.delta, eta=args.eta,
                       seed=args.seed + r, eval_every=args.eval_every, learner=name, n_candidates=args.explore_lists)
            for name in learners for m in models for r in range(args.runs)
        ]
        train, test = mslr_sample("train"), mslr_sample("test")
    except ValueError as e:
        raise CommandError(str(e)) from None
    except DataUnavailable as e:
        raise CommandError(str(e)) from None
    baseline = offline_ndcg(test, np.zeros(train[0].features.shape[1]), 10)
    runs: list[dict[str, Any]] = []
    for cfg in configs:
        r = run_oltr(train, test, cfg)
        runs.append({"learner": r.learner, "click_model": r.click_model, "seed": r.seed, "impressions": r.impressions,
                     "offline_ndcg10": r.offline_ndcg, "online_discounted_ndcg10": r.online_ndcg,
                     "mean_online_ndcg10": r.mean_online_ndcg, "updates": r.explore_wins,
                     "weight_norm": float(np.linalg.norm(r.weights)), "curve": r.curve})
        print(f"  {r.learner:<5} {r.click_model:<14} seed {r.seed}: offline NDCG@10 {r.offline_ndcg:.4f}", flush=True)
    print(f"linear rankers, MSLR-WEB sample (rankeval 0.8.2, fold 1, 43+43 queries), {args.impressions} impressions, "
          f"{args.runs} run(s) per cell (seeds {args.seed}..{args.seed + args.runs - 1}), δ={args.delta}, "
          f"η={'the paper' + chr(39) + 's' if args.eta is None else args.eta}, MGD candidates {args.explore_lists}")
    print(f"offline NDCG@10 of the zero-init ranker (random tie-break): {baseline:.4f}")
    print(f"{'learner':<8}{'click model':<14}{'offline NDCG@10 (95%)':>24}{'paper':>8}"
          f"{'online disc. cum. NDCG':>26}{'updates':>9}")
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in learners:
        for m in models:
            rows = [r for r in runs if r["click_model"] == m and r["learner"] == name]
            off, off_h = _interval([r["offline_ndcg10"] for r in rows])
            on, on_h = _interval([r["online_discounted_ndcg10"] for r in rows])
            updates = float(np.mean([r["updates"] for r in rows]))
            summary.setdefault(name, {})[m] = {"offline_mean": off, "offline_half_width_95": off_h,
                                               "online_mean": on, "online_half_width_95": on_h, "updates": updates}
            paper = PAPER.get(name, {}).get(m)
            print(f"{name:<8}{m:<14}{off:>14.4f} ± {off_h:<7.4f}{paper if paper else '':>8}"
                  f"{on:>18.1f} ± {on_h:>5.1f}{updates:>9.0f}")
    if "dbgd" in learners and len(learners) > 1:
        print("gain over DBGD, relative, offline NDCG@10 (paired by seed; 95% interval) vs the paper's:")
        for name in learners:
            if name == "dbgd":
                continue
            for m in models:
                base = [r["offline_ndcg10"] for r in runs if r["learner"] == "dbgd" and r["click_model"] == m]
                mine = [r["offline_ndcg10"] for r in runs if r["learner"] == name and r["click_model"] == m]
                gain, half = _interval([(a - b) / b for a, b in zip(mine, base, strict=True)])
                paper = PAPER[name][m] / PAPER["dbgd"][m] - 1
                summary[name][m]["gain_over_dbgd"] = gain
                summary[name][m]["gain_half_width_95"] = half
                print(f"  {name:<6}{m:<14}{gain:>+8.1%} ± {half:.1%}   paper {paper:+.1%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": {k: v for k, v in vars(args).items()
                                                    if k not in ("func", "_parser") and not isinstance(v, Path)},
                                         "zero_init_offline_ndcg10": baseline, "paper": PAPER,
                                         "summary": summary, "runs": runs}, indent=2))
    return 0
