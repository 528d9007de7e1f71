"""`drnflow ge`: Generator–Evaluator re-ranking: train the evaluator on logs (the seeded list environment's,
or with --from-topics the pipeline's own: drnflow/commands/ge_topics.py), train the pointer generator against
it with REINFORCE, compare generators against the truth, publish a generator trained on the pipeline's log."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError, duration_ms_argument


def _default_dir() -> Path:
    from operators.paths import state_dir

    return state_dir() / "ge"


def register(subparsers: Any) -> None:
    from drnflow.commands.ge_topics import cmd_publish
    from drnflow.commands.major_update import parse_time_ms
    from operators.kafka_io.addressing import add_kafka_arguments

    p = subparsers.add_parser("ge", help="Generator–Evaluator list re-ranking (train, compare, publish)",
                              description="Generator–Evaluator re-ranking, on a seeded list environment or, with "
                                          "--from-topics, on the DRN traffic logged on Kafka.")
    sub = p.add_subparsers(dest="ge_command", metavar="STEP", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", type=Path, default=None,
                       help="checkpoints and reports (default: <state>/ge)")
        q.add_argument("--report", type=Path, default=None, help="JSON report path (default: in --dir)")
        q.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")

    ev = sub.add_parser("train-evaluator", help="train the list-wise evaluator on logged exposures")
    common(ev)
    ev.add_argument("--preset", choices=["default", "tiny"], default="default",
                    help="environment size (default %(default)s)")
    ev.add_argument("--env-seed", type=int, default=0, help="seed of the list environment (default %(default)s)")
    ev.add_argument("--log-seed", type=int, default=1, help="seed of the logging run (default %(default)s)")
    ev.add_argument("--logs", type=int, default=20_000, help="logged exposures (default %(default)s)")
    ev.add_argument("--train-fraction", type=float, default=0.8,
                    help="earliest share of the logs used for training (default %(default)s)")
    ev.add_argument("--logging-temperature", type=float, default=0.7,
                    help="Gumbel noise of the noisy-greedy logging policy (default %(default)s)")
    ev.add_argument("--epochs", type=int, default=4, help="passes over the training logs (default %(default)s)")
    ev.add_argument("--batch-size", type=int, default=256, help="lists per gradient step (default %(default)s)")
    ev.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default %(default)s)")
    ev.add_argument("--hidden", type=int, default=32, help="transformer width (default %(default)s)")
    ev.add_argument("--layers", type=int, default=2, help="transformer layers (default %(default)s)")
    ev.add_argument("--seed", type=int, default=0, help="model init and batch order")
    ev.add_argument("--objectives", default=None, metavar="LIST",
                    help="train the multi-objective evaluator instead, on these of click,long_view,continue "
                         "(comma-separated; the environment only, not --from-topics); it writes "
                         "multi-task-evaluator.pt and train-evaluator-multi-task.json, evaluator.pt stays as it is")
    ev.add_argument("--objective-weights", default=None, metavar="LIST",
                    help="with --objectives: list score = sum of weight * expected count per objective "
                         "(default 1 each)")
    ev.add_argument("--loss-weights", default=None, metavar="LIST",
                    help="with --objectives: weights of the per-objective cross-entropies (default 1 each)")
    ev.add_argument("--from-topics", action="store_true",
                    help="train on the logged impressions and clicks of --model-id in [--from, --to) on Kafka "
                         "(the DRN traffic), instead of the list environment; train-generator and publish follow")
    add_kafka_arguments(ev)
    ev.add_argument("--from", dest="start", type=parse_time_ms, default=None, metavar="TIME",
                    help="with --from-topics: first event time, epoch ms or ISO-8601")
    ev.add_argument("--to", dest="end", type=parse_time_ms, default=None, metavar="TIME",
                    help="with --from-topics: end of the range (exclusive)")
    ev.add_argument("--model-id", default="drn",
                    help="with --from-topics: the DRN model whose logged traffic GE learns from (default %(default)s)")
    ev.add_argument("--attribution-window", type=duration_ms_argument, default="30 min",
                    help="with --from-topics: how long after an impression a click counts (default '%(default)s')")
    ev.set_defaults(func=cmd_train_evaluator)

    gen = sub.add_parser("train-generator", help="REINFORCE the pointer generator against the evaluator")
    common(gen)
    gen.add_argument("--steps", type=int, default=400, help="REINFORCE steps (default %(default)s)")
    gen.add_argument("--batch-size", type=int, default=64, help="requests per step (default %(default)s)")
    gen.add_argument("--samples", type=int, default=4,
                     help="sampled lists per request per step (default %(default)s)")
    gen.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default %(default)s)")
    gen.add_argument("--hidden", type=int, default=48,
                     help="generator width; the live re-ranker builds 48 (default %(default)s)")
    gen.add_argument("--seed", type=int, default=0, help="model init and sampling (default %(default)s)")
    gen.add_argument("--w-evaluator", type=float, default=1.0,
                     help="reward weight of the evaluator score (default %(default)s)")
    gen.add_argument("--w-distinct-shops", type=float, default=0.3,
                     help="reward weight of distinct shops (default %(default)s)")
    gen.add_argument("--w-no-adjacent-shop", type=float, default=0.3,
                     help="reward weight of no two neighbours from one shop (default %(default)s)")
    gen.add_argument("--w-type-share", type=float, default=0.3,
                     help="reward weight of the promoted type's share (default %(default)s)")
    gen.add_argument("--min-distinct-shops", type=int, default=8,
                     help="rule: distinct shops per list (default %(default)s)")
    gen.add_argument("--promoted-type", type=int, default=0,
                     help="rule: the type whose share is promoted (default %(default)s)")
    gen.add_argument("--min-type-share", type=float, default=0.2,
                     help="rule: its minimum share of a list (default %(default)s)")
    gen.set_defaults(func=cmd_train_generator)

    cmp = sub.add_parser("evaluate", help="compare generators on held-out requests (table + JSON)")
    common(cmp)
    cmp.add_argument("--requests", type=int, default=300, help="held-out requests (default %(default)s)")
    cmp.add_argument("--k", type=int, default=8, help="lists for best-of-K and multi-queue")
    cmp.add_argument("--beam-width", type=int, default=4)
    cmp.add_argument("--mmr-diversity", type=float, default=0.3)
    cmp.add_argument("--dpp-quality", type=float, default=1.0)
    cmp.add_argument("--seed", type=int, default=0, help="sampling seeds at serving")
    cmp.set_defaults(func=cmd_evaluate)

    pub = sub.add_parser("publish", help="publish a generator trained on the pipeline's log as a MAJOR, behind a gate",
                         description="Judge the generator of `train-generator` (after `train-evaluator "
                         "--from-topics`) on the held-out part of its range and, when the evaluator prefers its "
                         "lists on at least --min-better of the requests and the evaluator's held-out AUC is at "
                         "least --min-auc, publish it as a MAJOR of --model-id on the range's model-weights topic.")
    common(pub)
    pub.add_argument("--model-id", default="ge", help="the generator's model_id (default %(default)s)")
    pub.add_argument("--min-better", type=float, default=0.5,
                     help="share of held-out requests the generator's list must win (default %(default)s)")
    pub.add_argument("--min-auc", type=float, default=0.6, help="evaluator held-out AUC needed (default %(default)s)")
    pub.set_defaults(func=cmd_publish)


def _setup_torch(threads: int) -> None:
    import torch

    if threads < 1:
        raise CommandError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def _write_report(args: argparse.Namespace, directory: Path, name: str, report: dict[str, Any]) -> Path:
    path = args.report if args.report is not None else directory / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _need(path: Path, step: str) -> Path:
    if not path.exists():
        raise CommandError(f"{path} does not exist: run `drnflow ge {step}` first (same --dir)")
    return path


def cmd_train_evaluator(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    import numpy as np

    from models.ge.evaluator import EvaluatorTrainConfig, ListEvaluator, auc, predict_logged, train_evaluator
    from models.ge.pipeline import (
        EVALUATOR_FILE,
        PRESETS,
        GeSetup,
        build_data,
        evaluator_config_for,
        save_evaluator,
    )

    directory = args.dir or _default_dir()
    if args.objectives is None and (args.objective_weights is not None or args.loss_weights is not None):
        raise CommandError("--objective-weights and --loss-weights need --objectives")
    if args.objectives is not None:
        if args.from_topics:
            raise CommandError("--objectives needs the list environment: the pipeline's log (--from-topics) "
                               "has clicks only")
        from drnflow.commands.ge_multi_task import train_multi_task_evaluator

        return train_multi_task_evaluator(args, directory)
    if args.from_topics:
        from drnflow.commands.ge_topics import train_evaluator as evaluator_from_topics

        path = _write_report(args, directory, "train-evaluator", evaluator_from_topics(args, directory))
        print(f"report: {path}")
        return 0
    try:
        setup = GeSetup(env=PRESETS[args.preset], env_seed=args.env_seed, logs=args.logs,
                        log_seed=args.log_seed, logging_temperature=args.logging_temperature,
                        train_fraction=args.train_fraction)
        train_cfg = EvaluatorTrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                                         learning_rate=args.lr, seed=args.seed)
    except ValueError as e:
        raise CommandError(str(e)) from None
    started = time.perf_counter()
    print(f"building environment ({args.preset}) and {setup.logs} logged exposures ...")
    env, train, held_out = build_data(setup)
    try:
        evaluator = ListEvaluator(evaluator_config_for(env, hidden=args.hidden, layers=args.layers),
                                  seed=args.seed)
    except ValueError as e:
        raise CommandError(str(e)) from None
    losses = train_evaluator(evaluator, train, train_cfg, progress=True)
    predicted = predict_logged(evaluator, held_out)
    truth = env.click_probs(held_out.requests.user, env.item_lists(held_out.requests, held_out.shown))
    ranker = np.take_along_axis(held_out.requests.ranker_score, held_out.shown, axis=1)
    report = {
        "setup": {**setup.__dict__, "env": setup.env.__dict__},
        "train_requests": len(train), "held_out_requests": len(held_out),
        "held_out_ctr": float(held_out.clicks.mean()),
        "epoch_losses": losses,
        "held_out_auc": auc(held_out.clicks, predicted),
        "held_out_auc_ranker_score": auc(held_out.clicks, ranker),
        "held_out_auc_true_probs": auc(held_out.clicks, truth),
        "predicted_ctr": float(predicted.mean()),
        "seconds": time.perf_counter() - started,
    }
    save_evaluator(directory / EVALUATOR_FILE, setup, evaluator)
    path = _write_report(args, directory, "train-evaluator", report)
    print(f"held-out AUC {report['held_out_auc']:.4f} "
          f"(ranker score alone {report['held_out_auc_ranker_score']:.4f}, "
          f"true click probabilities {report['held_out_auc_true_probs']:.4f}) on {len(held_out)} requests")
    print(f"evaluator: {directory / EVALUATOR_FILE}\nreport: {path}")
    return 0


def cmd_train_generator(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    import torch

    from models.ge.pipeline import (
        EVALUATOR_FILE,
        GENERATOR_FILE,
        TOPICS_SOURCE,
        GeSetup,
        build_data,
        generator_config_for,
        load_evaluator_setup,
        save_generator,
    )
    from models.ge.pointer_generator import PointerGenerator
    from models.ge.reinforce import ReinforceConfig, train_generator
    from models.ge.tensors import RequestTensors
    from models.ge.utilities import ListReward, RuleConfig, UtilityWeights

    directory = args.dir or _default_dir()
    try:
        saved, evaluator = load_evaluator_setup(_need(directory / EVALUATOR_FILE, "train-evaluator"))
    except ValueError as e:
        raise CommandError(str(e)) from None
    try:
        weights = UtilityWeights(evaluator=args.w_evaluator, distinct_shops=args.w_distinct_shops,
                                 no_adjacent_shop=args.w_no_adjacent_shop, type_share=args.w_type_share)
        rules = RuleConfig(min_distinct_shops=args.min_distinct_shops, promoted_type=args.promoted_type,
                           min_type_share=args.min_type_share)
        cfg = ReinforceConfig(steps=args.steps, batch_size=args.batch_size, samples_per_request=args.samples,
                              learning_rate=args.lr, seed=args.seed, utility_weights=weights, rules=rules)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if saved.get("source") == TOPICS_SOURCE:
        from drnflow.commands.ge_topics import train_generator as from_topics

        path = _write_report(args, directory, "train-generator",
                             from_topics(args, directory, saved, evaluator, weights, rules, cfg))
        print(f"report: {path}")
        return 0
    setup = GeSetup.from_dict(saved)
    started = time.perf_counter()
    env, train, held_out = build_data(setup)
    if rules.promoted_type >= env.catalog.n_types:
        raise CommandError(f"--promoted-type {rules.promoted_type} is not a type of this catalog "
                           f"(0..{env.catalog.n_types - 1})")
    try:
        generator = PointerGenerator(generator_config_for(env, hidden=args.hidden), seed=args.seed)
    except ValueError as e:
        raise CommandError(str(e)) from None
    reward = ListReward(evaluator, weights, rules)
    requests = RequestTensors.from_batch(held_out.requests)
    n = env.config.list_size

    def held_out_stats() -> dict[str, float]:
        with torch.no_grad():
            lists, _ = generator.decode(requests, n, sample=False)
        return {"reward": float(reward(requests, lists).mean()),
                "evaluator_score": float(evaluator.score(requests, lists).mean()),
                "true_clicks": float(env.true_value(held_out.requests, lists.numpy()).mean())}

    before = held_out_stats()
    history = train_generator(generator, reward, train, cfg, progress=True)
    after = held_out_stats()
    shown = torch.as_tensor(held_out.shown)
    logged = {"reward": float(reward(requests, shown).mean()),
              "evaluator_score": float(evaluator.score(requests, shown).mean()),
              "true_clicks": float(env.true_value(held_out.requests, held_out.shown).mean())}
    save_generator(directory / GENERATOR_FILE, generator, weights, rules)
    report = {
        "config": {**cfg.__dict__, "utility_weights": weights.__dict__, "rules": rules.__dict__},
        "held_out_greedy_before": before, "held_out_greedy_after": after, "held_out_logged": logged,
        "train_reward_first_10": history.reward[:10], "train_reward_last_10": history.reward[-10:],
        "train_advantage_last_10": history.advantage[-10:],
        "seconds": time.perf_counter() - started,
    }
    path = _write_report(args, directory, "train-generator", report)
    print(f"held-out reward (greedy decoding): {before['reward']:.3f} untrained -> {after['reward']:.3f} "
          f"trained (logged lists {logged['reward']:.3f})")
    print(f"held-out true expected clicks: {before['true_clicks']:.3f} -> {after['true_clicks']:.3f} "
          f"(logged {logged['true_clicks']:.3f})")
    print(f"generator: {directory / GENERATOR_FILE}\nreport: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    import numpy as np
    from tqdm import tqdm

    from models.ge.compare import compare_generators, format_table
    from models.ge.pipeline import (
        EVALUATOR_FILE,
        GENERATOR_FILE,
        ServingConfig,
        build_data,
        load_evaluator,
        load_generator,
        standard_generators,
    )
    from models.ge.utilities import ListReward

    directory = args.dir or _default_dir()
    setup, evaluator = load_evaluator(_need(directory / EVALUATOR_FILE, "train-evaluator"))
    generator, weights, rules = load_generator(_need(directory / GENERATOR_FILE, "train-generator"))
    if args.requests < 1:
        raise CommandError(f"--requests must be >= 1, got {args.requests}")
    env, _, held_out = build_data(setup)
    held_out = held_out.take(np.arange(min(args.requests, len(held_out))))
    reward = ListReward(evaluator, weights, rules)
    try:
        serving = ServingConfig(k=args.k, beam_width=args.beam_width, mmr_diversity=args.mmr_diversity,
                                dpp_quality=args.dpp_quality, seed=args.seed)
    except ValueError as e:
        raise CommandError(str(e)) from None
    n = env.config.list_size
    generators = standard_generators(evaluator, generator, reward, n, serving)
    started = time.perf_counter()
    with tqdm(total=len(generators) * len(held_out), desc="serving held-out requests", unit="req") as bar:
        results = compare_generators(env, held_out, generators, reward, on_request=lambda: bar.update(1))
    print(format_table(results))
    report = {"requests": len(held_out), "candidates": env.config.candidates, "list_size": n,
              "threads": args.threads, "serving": serving.__dict__, "seconds": time.perf_counter() - started,
              "results": [r.as_dict() for r in results]}
    path = _write_report(args, directory, "evaluate", report)
    print(f"report: {path}")
    return 0
