"""`drnflow ge ... --from-topics`: GE trained on the pipeline's own log (jobs/ge_from_log.py), and `ge publish`.

train-evaluator reads a logged range of the DRN traffic and trains the evaluator on its exposures;
train-generator REINFORCEs the pointer generator against it on the same range's requests; publish judges
the generator on the held-out (later) part of the range and writes it as a MAJOR on model-weights only when
it passes the gate. Every step says what it read and decided in one screen; bad input gets one sentence.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from drnflow.errors import CommandError


def _source_of(setup: dict[str, Any]) -> Any:
    from jobs.ge_from_log import LogSource

    return LogSource(**{k: setup[k] for k in ("bootstrap", "prefix", "model_id", "start_ms", "end_ms",
                                               "attribution_window_ms")})


def _read(setup: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(all logged lists, train part, held-out part, what was read) of the setup's range."""
    from kafka.errors import KafkaError

    from jobs.ge_from_log import read_logged
    from models.ge.environment import split_by_time
    from operators.kafka_io.clients import KafkaIOError

    source = _source_of(setup)
    try:
        data, read = read_logged(source)
    except (KafkaError, KafkaIOError) as e:
        raise CommandError(f"Kafka at {source.bootstrap} failed ({type(e).__name__}: {e})") from None
    except (ValueError, TimeoutError) as e:
        raise CommandError(str(e)) from None
    if len(data.lists) < 10:
        raise CommandError(f"only {len(data.lists)} usable logged impressions in the range; GE needs at least 10")
    train, held_out = split_by_time(data.lists, float(setup["train_fraction"]))
    print(f"read {read['impressions']} impressions and {read['clicks']} clicks of model {source.model_id!r} in "
          f"[{source.start_ms}, {source.end_ms}) from {source.topics.impressions}: {len(data.lists)} usable "
          f"({len(train)} train, {len(held_out)} held out, the later ones)"
          + (f"; skipped {data.skipped}" if data.skipped else ""))
    return data, train, held_out, read


def train_evaluator(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    import numpy as np

    from models.ge.evaluator import EvaluatorConfig, EvaluatorTrainConfig, ListEvaluator, auc, predict_logged
    from models.ge.evaluator import train_evaluator as fit
    from models.ge.pipeline import EVALUATOR_FILE, TOPICS_SOURCE, save_evaluator

    if args.start is None or args.end is None:
        raise CommandError("--from-topics needs --from and --to (the event-time range of the logged traffic)")
    if not 0.0 < args.train_fraction < 1.0:
        raise CommandError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    setup = {"source": TOPICS_SOURCE, "bootstrap": args.bootstrap, "prefix": args.topic_prefix,
             "model_id": args.model_id, "start_ms": args.start, "end_ms": args.end,
             "attribution_window_ms": args.attribution_window, "train_fraction": args.train_fraction}
    try:
        _source_of(setup)
        train_cfg = EvaluatorTrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                         seed=args.seed)
    except ValueError as e:
        raise CommandError(str(e)) from None
    started = time.perf_counter()
    data, train, held_out, read = _read(setup)
    req = data.lists.requests
    n_shops, n_types = _categories()
    config = EvaluatorConfig(item_dim=req.item_features.shape[2], user_dim=req.user_features.shape[1],
                             n_shops=n_shops, n_types=n_types, max_length=max(16, data.lists.shown.shape[1]),
                             hidden=args.hidden, layers=args.layers)
    evaluator = ListEvaluator(config, seed=args.seed)
    losses = fit(evaluator, train, train_cfg, progress=True)
    if held_out.clicks.min() == held_out.clicks.max():
        raise CommandError("the held-out part has no clicks (or only clicks): no AUC; widen the range")
    predicted = predict_logged(evaluator, held_out)
    ranker = np.take_along_axis(held_out.requests.ranker_score, held_out.shown, axis=1)
    report = {"setup": setup, "read": read, "skipped": data.skipped, "train_requests": len(train),
              "held_out_requests": len(held_out), "held_out_ctr": float(held_out.clicks.mean()),
              "epoch_losses": losses, "held_out_auc": auc(held_out.clicks, predicted),
              "held_out_auc_ranker_score": auc(held_out.clicks, ranker),
              "predicted_ctr": float(predicted.mean()), "seconds": time.perf_counter() - started}
    save_evaluator(directory / EVALUATOR_FILE, setup, evaluator)
    print(f"held-out AUC {report['held_out_auc']:.4f} (DRN's Q alone {report['held_out_auc_ranker_score']:.4f}) "
          f"on {len(held_out)} logged requests")
    print(f"evaluator: {directory / EVALUATOR_FILE}")
    return report


def _categories() -> tuple[int, int]:
    from models.ge.catalog_movielens import MovieLensCategories

    cats = MovieLensCategories()
    return cats.n_shops, cats.n_types


def generator_config_of(evaluator: Any, hidden: int) -> Any:
    """The generator for the evaluator's features: what `simulate --reranker` builds for this world."""
    from models.ge.pointer_generator import GeneratorConfig

    c = evaluator.config
    return GeneratorConfig(item_dim=c.item_dim, user_dim=c.user_dim, n_shops=c.n_shops, n_types=c.n_types,
                           hidden=hidden)


def held_out_stats(evaluator: Any, generator: Any, reward: Any, held_out: Any) -> dict[str, Any]:
    """On the held-out requests: reward and evaluator score of the generator's greedy lists and of the logged
    lists, and the share of requests whose greedy list the evaluator scores above the logged one."""
    import torch

    from models.ge.tensors import RequestTensors

    requests = RequestTensors.from_batch(held_out.requests)
    shown = torch.as_tensor(held_out.shown)
    with torch.no_grad():
        lists, _ = generator.decode(requests, shown.shape[1], sample=False)
        gen_score, log_score = evaluator.score(requests, lists), evaluator.score(requests, shown)
        return {"reward": float(reward(requests, lists).mean()), "logged_reward": float(reward(requests, shown).mean()),
                "evaluator_score": float(gen_score.mean()), "logged_evaluator_score": float(log_score.mean()),
                "better_share": float((gen_score > log_score + 1e-6).float().mean()),
                "worse_share": float((gen_score < log_score - 1e-6).float().mean())}


def train_generator(args: argparse.Namespace, directory: Path, setup: dict[str, Any], evaluator: Any,
                    weights: Any, rules: Any, cfg: Any) -> dict[str, Any]:
    from models.ge.pipeline import GENERATOR_FILE, save_generator
    from models.ge.pointer_generator import PointerGenerator
    from models.ge.reinforce import train_generator as fit
    from models.ge.utilities import ListReward

    if rules.promoted_type >= evaluator.config.n_types:
        raise CommandError(f"--promoted-type {rules.promoted_type} is not a type of this catalog "
                           f"(0..{evaluator.config.n_types - 1})")
    started = time.perf_counter()
    _, train, held_out, read = _read(setup)
    generator = PointerGenerator(generator_config_of(evaluator, args.hidden), seed=args.seed)
    reward = ListReward(evaluator, weights, rules)
    before = held_out_stats(evaluator, generator, reward, held_out)
    history = fit(generator, reward, train, cfg, progress=True)
    after = held_out_stats(evaluator, generator, reward, held_out)
    save_generator(directory / GENERATOR_FILE, generator, weights, rules)
    print(f"held-out reward (greedy decoding): {before['reward']:.3f} untrained -> {after['reward']:.3f} trained "
          f"(logged lists {after['logged_reward']:.3f}); the evaluator prefers the trained list on "
          f"{after['better_share']:.1%} of the requests, the logged one on {after['worse_share']:.1%}")
    print(f"generator: {directory / GENERATOR_FILE}")
    return {"setup": setup, "read": read, "config": {**cfg.__dict__, "utility_weights": weights.__dict__,
                                                     "rules": rules.__dict__},
            "held_out_greedy_before": before, "held_out_greedy_after": after,
            "train_reward_first_10": history.reward[:10], "train_reward_last_10": history.reward[-10:],
            "seconds": time.perf_counter() - started}


def cmd_publish(args: argparse.Namespace) -> int:
    """Judge the trained generator on the held-out range and publish it as a MAJOR when it passes."""
    from kafka.errors import KafkaError

    from drnflow.commands.ge import _default_dir, _need, _setup_torch, _write_report
    from jobs.ge_from_log import publish_generator
    from models.ge.evaluator import auc, predict_logged
    from models.ge.pipeline import EVALUATOR_FILE, GENERATOR_FILE, TOPICS_SOURCE, load_evaluator_setup, load_generator
    from models.ge.utilities import ListReward

    _setup_torch(args.threads)
    directory = args.dir or _default_dir()
    try:
        setup, evaluator = load_evaluator_setup(_need(directory / EVALUATOR_FILE, "train-evaluator --from-topics"))
        generator, weights, rules = load_generator(_need(directory / GENERATOR_FILE, "train-generator"))
    except ValueError as e:
        raise CommandError(f"{e}; nothing published") from None
    if setup.get("source") != TOPICS_SOURCE:
        raise CommandError("ge publish takes a generator trained on the pipeline's log "
                           "(train-evaluator --from-topics); nothing published")
    gc, ec = generator.config, evaluator.config
    if (gc.item_dim, gc.user_dim, gc.n_shops, gc.n_types) != (ec.item_dim, ec.user_dim, ec.n_shops, ec.n_types):
        raise CommandError(f"the generator takes items of {gc.item_dim} features and users of {gc.user_dim}, the "
                           f"logged features are {ec.item_dim} and {ec.user_dim}; nothing published")
    _, _, held_out, _ = _read(setup)
    stats = held_out_stats(evaluator, generator, ListReward(evaluator, weights, rules), held_out)
    stats["evaluator_auc"] = auc(held_out.clicks, predict_logged(evaluator, held_out))
    passed = stats["better_share"] >= args.min_better and stats["evaluator_auc"] >= args.min_auc
    print(f"gate on {len(held_out)} held-out requests: the evaluator prefers the generator's list on "
          f"{stats['better_share']:.1%} (needs {args.min_better:.0%}), evaluator AUC {stats['evaluator_auc']:.4f} "
          f"(needs {args.min_auc})")
    report: dict[str, Any] = {"setup": setup, "gate": stats, "min_better": args.min_better, "min_auc": args.min_auc}
    if not passed:
        report["status"] = "REJECTED"
        _write_report(args, directory, "publish", report)
        print("not published")
        return 3
    source = _source_of(setup)
    try:
        record = publish_generator(source.bootstrap, source.topics.model_weights, args.model_id, generator,
                                   created_at=int(source.end_ms))
    except KafkaError as e:
        raise CommandError(f"could not publish to {source.topics.model_weights} ({type(e).__name__}: {e})") from None
    report.update(status="PUBLISHED", version=record["version"], checksum=record["checksum"])
    path = _write_report(args, directory, "publish", report)
    print(f"published generator {args.model_id!r} v{record['version']} (MAJOR) to {source.topics.model_weights}; "
          f"`drnflow simulate --policy drn --reranker --reranker-model-id {args.model_id} --top-m "
          f"{held_out.shown.shape[1]}` serves it\nreport: {path}")
    return 0
