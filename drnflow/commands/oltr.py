"""`drnflow oltr-sim`: the DBGD + team-draft check on real LETOR data (MSLR-WEB sample), no Kafka."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError

CASCADES = ("perfect", "navigational", "informational")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "oltr-sim",
        help="DBGD with a linear ranker on the MSLR-WEB sample under the cascade click models",
        description="Online LTR check (Schuth et al. 2016; Oosterhuis & de Rijke 2018 protocol): zero "
        "init, delta=1, eta=0.01, 10 results, team-draft interleaving. Reports offline NDCG@10 on the "
        "test file and online discounted cumulative NDCG@10 (gamma=0.9995).",
    )
    p.add_argument("--click-model", default="all", choices=[*CASCADES, "pbm", "all"],
                   help="click model, or all three cascades (default %(default)s)")
    p.add_argument("--impressions", type=int, default=10_000, help="default %(default)s")
    p.add_argument("--runs", type=int, default=3, help="runs per click model, seeds seed..seed+runs-1")
    p.add_argument("--seed", type=int, default=1, help="default %(default)s")
    p.add_argument("--delta", type=float, default=1.0, help="exploration step δ (default %(default)s)")
    p.add_argument("--eta", type=float, default=0.01, help="learning rate η (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="also record offline NDCG every N impressions (in the JSON)")
    p.add_argument("--json", type=Path, default=None, help="write all runs and means to this file")
    p.set_defaults(func=cmd_oltr)


def cmd_oltr(args: argparse.Namespace) -> int:
    import numpy as np

    from drnflow.datasets import DataUnavailable, mslr_sample
    from models.oltr import OltrConfig, offline_ndcg, run_dbgd

    if args.runs < 1:
        raise CommandError(f"--runs must be >= 1, got {args.runs}")
    models = list(CASCADES) if args.click_model == "all" else [args.click_model]
    try:
        configs = [
            OltrConfig(click_model=m, impressions=args.impressions, delta=args.delta, eta=args.eta,
                       seed=args.seed + r, eval_every=args.eval_every)
            for m in models for r in range(args.runs)
        ]
        train, test = mslr_sample("train"), mslr_sample("test")
    except ValueError as e:
        raise CommandError(str(e)) from None
    except DataUnavailable as e:
        raise CommandError(str(e)) from None
    baseline = offline_ndcg(test, np.zeros(train[0].features.shape[1]), 10)
    runs: list[dict[str, Any]] = []
    for cfg in configs:
        r = run_dbgd(train, test, cfg)
        runs.append({"click_model": r.click_model, "seed": r.seed, "impressions": r.impressions,
                     "offline_ndcg10": r.offline_ndcg, "online_discounted_ndcg10": r.online_ndcg,
                     "mean_online_ndcg10": r.mean_online_ndcg, "explore_wins": r.explore_wins,
                     "weight_norm": float(np.linalg.norm(r.weights)), "curve": r.curve})
    print(f"DBGD, linear ranker, MSLR-WEB sample (rankeval 0.8.2, fold 1, 43+43 queries), "
          f"{args.impressions} impressions, {args.runs} run(s), δ={args.delta}, η={args.eta}")
    print(f"offline NDCG@10 of the zero-init ranker (random tie-break): {baseline:.4f}")
    header = f"{'click model':<14}{'offline NDCG@10':>22}{'online disc. cum. NDCG':>26}{'explore wins':>14}"
    print(header)
    summary: dict[str, dict[str, float]] = {}
    for m in models:
        rows = [r for r in runs if r["click_model"] == m]
        off = np.array([r["offline_ndcg10"] for r in rows])
        on = np.array([r["online_discounted_ndcg10"] for r in rows])
        wins = float(np.mean([r["explore_wins"] for r in rows]))
        summary[m] = {"offline_mean": float(off.mean()), "offline_std": float(off.std()),
                      "online_mean": float(on.mean()), "online_std": float(on.std()), "explore_wins": wins}
        print(f"{m:<14}{off.mean():>14.4f} ± {off.std():.4f}"
              f"{on.mean():>18.1f} ± {on.std():>5.1f}{wins:>14.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": {k: v for k, v in vars(args).items()
                                                    if k not in ("func", "_parser") and not isinstance(v, Path)},
                                         "zero_init_offline_ndcg10": baseline,
                                         "summary": summary, "runs": runs}, indent=2))
    return 0
