"""`drnflow ge train-evaluator --objectives ...`: the multi-objective evaluator on the list environment.

It reports each objective's held-out AUC next to that of the environment's true probabilities, and which
lists the user's weights pick among the same candidates next to single-objective weights, scored by the
truth, so one screen shows whether it learned each objective and how the weights trade them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from drnflow.errors import CommandError

MULTI_TASK_FILE = "multi-task-evaluator.pt"
REPORT_NAME = "train-evaluator-multi-task"


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise CommandError(f"{flag} must be comma-separated numbers, got {text!r}") from None


def train_multi_task_evaluator(args: argparse.Namespace, directory: Path) -> int:
    import numpy as np

    from models.ge.evaluator import EvaluatorTrainConfig
    from models.ge.multi_task import (
        MultiTaskConfig,
        MultiTaskEvaluator,
        check_objectives,
        check_weights,
        save_multi_task,
        train_multi_task,
    )
    from models.ge.multi_task_report import objective_aucs, weighting_choices
    from models.ge.pipeline import PRESETS, GeSetup, build_data, evaluator_config_for

    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    score_weights = _floats(args.objective_weights, "--objective-weights")
    loss_weights = _floats(args.loss_weights, "--loss-weights")
    try:
        setup = GeSetup(env=PRESETS[args.preset], env_seed=args.env_seed, logs=args.logs,
                        log_seed=args.log_seed, logging_temperature=args.logging_temperature,
                        train_fraction=args.train_fraction)
        train_cfg = EvaluatorTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                         learning_rate=args.lr, seed=args.seed)
        check_objectives(objectives)
        if score_weights is not None:
            check_weights(objectives, score_weights, "--objective-weights")
        if loss_weights is not None:
            check_weights(objectives, loss_weights, "--loss-weights", non_negative=True)
    except ValueError as e:
        raise CommandError(str(e)) from None
    started = time.perf_counter()
    print(f"building environment ({args.preset}) and {setup.logs} logged exposures with "
          f"{', '.join(objectives)} labels ...")
    env, train, held_out = build_data(setup, objectives=True)
    try:
        config = MultiTaskConfig(evaluator_config_for(env, hidden=args.hidden, layers=args.layers), objectives,
                                 score_weights)
    except ValueError as e:
        raise CommandError(str(e)) from None
    evaluator = MultiTaskEvaluator(config, seed=args.seed)
    losses = train_multi_task(evaluator, train, train_cfg, loss_weights, progress=True)
    aucs = objective_aucs(env, evaluator, held_out)
    weightings: dict[str, tuple[float, ...]] = {"weighted": config.weights}
    for i, name in enumerate(objectives):
        weightings[f"{name} only"] = tuple(float(i == j) for j in range(len(objectives)))
    requests = held_out.requests.take(np.arange(min(300, len(held_out))))
    picks = weighting_choices(env, evaluator, requests, weightings, k=8, seed=args.seed,
                              temperature=args.logging_temperature)  # candidates like the logged lists
    logged = env.true_objective_values(requests, held_out.shown[: len(requests)])
    report: dict[str, Any] = {
        "setup": {**setup.__dict__, "env": setup.env.__dict__}, "objective_model": env.objectives.__dict__,
        "objectives": list(objectives), "objective_weights": list(config.weights),
        "loss_weights": list(loss_weights) if loss_weights is not None else [1.0] * len(objectives),
        "train_requests": len(train), "held_out_requests": len(held_out), "epoch_losses": losses,
        "held_out": aucs,
        "picks_among_8_candidates": {"requests": len(requests), "logged": {o: float(v.mean()) for o, v in
                                                                           logged.items()}, **picks},
        "seconds": time.perf_counter() - started,
    }
    save_multi_task(directory / MULTI_TASK_FILE, {**setup.__dict__, "env": setup.env.__dict__}, evaluator)
    path = args.report if args.report is not None else directory / f"{REPORT_NAME}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in aucs.items():
        print(f"{name:>9}: held-out AUC {row['held_out_auc']:.4f} (true probabilities "
              f"{row['held_out_auc_true_probs']:.4f}), rate {row['rate']:.3f}")
    print(f"true expected counts of the list each weighting picks among 8 candidates from the logging policy "
          f"({len(requests)} held-out requests):")
    print(f"  {'weights':<24}" + "".join(f"{o:>11}" for o in ("click", "long_view", "continue")))
    for name, row in picks.items():
        label = f"{name} ({','.join(f'{w:g}' for w in row['weights'])})"
        print(f"  {label:<24}" + "".join(f"{row[o]:>11.3f}" for o in ("click", "long_view", "continue")))
    print(f"  {'logged lists':<24}" + "".join(f"{float(logged[o].mean()):>11.3f}"
                                             for o in ("click", "long_view", "continue")))
    print(f"multi-task evaluator: {directory / MULTI_TASK_FILE}\nreport: {path}")
    return 0

