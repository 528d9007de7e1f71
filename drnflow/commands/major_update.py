"""`drnflow major-update`: retrain DRN (Dueling Double DQN) on a logged range and publish a MAJOR version.

`--follow` runs one update per MajorUpdateTrigger on {prefix}major-update-triggers; `--from/--to` runs once
for an event-time range. Reports (JSON + Markdown) and checkpoints go to --runs-dir/<model>/<run>/.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError
from operators.kafka_io.addressing import add_kafka_arguments


def parse_time_ms(text: str) -> int:
    """Event-time millis from an int (millis) or an ISO-8601 date-time (UTC when no zone is given)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch millis nor an ISO date-time (e.g. 2024-01-01T00:00:00Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "major-update",
        help="retrain the DRN network on logged impressions/clicks and publish a MAJOR version",
        description=__doc__,
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--follow", action="store_true", help="consume major-update-triggers, one update each")
    mode.add_argument("--from", dest="start", type=parse_time_ms, help="range start (millis or ISO), inclusive")
    p.add_argument("--to", dest="end", type=parse_time_ms, help="range end (millis or ISO), exclusive")
    p.add_argument("--model-id", default=None, help="model to update (with --from/--to: required, default drn; "
                   "with --follow: only this model's triggers)")
    p.add_argument("--base-version", type=int, default=None,
                   help="with --from/--to: start from this version (default: the latest on model-weights)")
    add_kafka_arguments(p)
    p.add_argument("--runs-dir", type=Path, default=None,
                   help="reports and checkpoints (default <state dir>/major-update)")
    p.add_argument("--force", action="store_true", help="run again even when the run dir holds a final report")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=2000, help="DDQN minibatch steps (default %(default)s)")
    t.add_argument("--batch-size", type=int, default=256, help="default %(default)s")
    t.add_argument("--learning-rate", type=float, default=1e-3, help="default %(default)s")
    t.add_argument("--target-every", type=int, default=200,
                   help="switch the target network every K steps (default %(default)s)")
    t.add_argument("--gamma", type=float, default=0.4, help="future-reward discount (default %(default)s)")
    t.add_argument("--beta", type=float, default=0.05, help="weight of activeness in the reward (default %(default)s)")
    t.add_argument("--seed", type=int, default=0, help="seed of every random choice (default %(default)s)")
    t.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda[:N] (default %(default)s)")
    t.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default %(default)s)")
    e = p.add_argument_group("evaluation and gate")
    e.add_argument("--holdout", type=float, default=0.2,
                   help="share of the range (latest impressions) held out for evaluation (default %(default)s)")
    e.add_argument("--gate-metric", default="ndcg_ips", choices=["ctr", "precision_at_5", "ndcg", "ndcg_ips"],
                   help="offline metric the gate compares (default %(default)s: position-debiased nDCG)")
    e.add_argument("--gate-margin", type=float, default=0.01,
                   help="publish nothing when the candidate is worse than the base by more (default %(default)s)")
    e.add_argument("--gate-confidence", type=float, default=0.95,
                   help="with --gate-metric ndcg_ips: refuse only when the candidate is worse by more than the "
                   "margin with this one-sided confidence, paired over the held-out impressions; 0 refuses on "
                   "the point estimate (default %(default)s)")
    e.add_argument("--probation-windows", type=int, default=None, metavar="N",
                   help="publish on probation: rankers serve it against its base for its first N windows and "
                   "the minor-update job rolls it back (ROLLBACK of the base) when it wins less than "
                   "--probation-min-win-rate of the decided impressions (default: no probation)")
    e.add_argument("--probation-min-win-rate", type=float, default=0.5,
                   help="with --probation-windows: the share it must win (default %(default)s)")
    e.add_argument("--probation-confidence", type=float, default=0.95,
                   help="with --probation-windows: roll back only when the upper one-sided Wilson bound of its "
                   "win rate at this confidence is below the min win rate, so a near tie is kept; 0 rolls back "
                   "on the point estimate (default %(default)s)")
    e.add_argument("--refused-on-probation", action="store_true",
                   help="with --probation-windows: publish a candidate the offline gate refuses on probation "
                   "all the same, so the online test against its base decides (the offline estimate leans "
                   "towards the policy that logged the held-out lists)")
    e.add_argument("--max-corrupt-fraction", type=float, default=0.01,
                   help="publish nothing when more records of the range are corrupt (default %(default)s)")
    e.add_argument("--no-baselines", action="store_true", help="skip the LR / FM rows of the offline table")
    f = p.add_argument_group("follow mode")
    f.add_argument("--group-id", default="drnflow-major-update", help="consumer group (default %(default)s)")
    f.add_argument("--max-triggers", type=int, default=None, help="stop after this many triggers")
    f.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_major_update)


def build_config(args: argparse.Namespace) -> Any:
    from models.baselines import BaselineConfig
    from models.major.ddqn import DdqnConfig
    from models.major.update import MajorUpdateConfig
    from models.probation import ProbationParams
    from models.transitions import TransitionConfig

    try:
        probation = (None if args.probation_windows is None
                     else ProbationParams(args.probation_windows, args.probation_min_win_rate,
                                          args.probation_confidence))
        return MajorUpdateConfig(
            transitions=TransitionConfig(beta=args.beta),
            ddqn=DdqnConfig(gamma=args.gamma, learning_rate=args.learning_rate, batch_size=args.batch_size,
                            steps=args.steps, target_every=args.target_every, seed=args.seed,
                            device=args.device, checkpoint_every=args.checkpoint_every),
            baselines=BaselineConfig(seed=args.seed),
            holdout_fraction=args.holdout, gate_metric=args.gate_metric, gate_margin=args.gate_margin,
            gate_confidence=args.gate_confidence, probation=probation,
            refused_on_probation=args.refused_on_probation,
            max_corrupt_fraction=args.max_corrupt_fraction, run_baselines=not args.no_baselines,
        )
    except ValueError as e:
        raise CommandError(str(e)) from None


def cmd_major_update(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from jobs import major_update as job
    from operators.kafka_io import require_broker, require_topics
    from operators.paths import state_dir
    from schemas.topics import TopicNames

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python logs every connection and group step at INFO: a hundred lines before the result.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    cfg = build_config(args)
    try:
        topics = TopicNames(args.topic_prefix)
    except ValueError as e:
        raise CommandError(str(e)) from None
    require_broker(args.bootstrap)
    require_topics(args.bootstrap, [topics.impressions, topics.clicks, topics.model_weights]
                   + ([topics.major_update_triggers] if args.follow else []))
    runs_dir = args.runs_dir or state_dir() / "major-update"
    progress = not args.no_progress
    try:
        if args.follow:
            if args.end is not None:
                raise CommandError("--to goes with --from, not with --follow")
            n = job.follow_triggers(
                args.bootstrap, topics, cfg, runs_dir, model_ids=[args.model_id] if args.model_id else [],
                group_id=args.group_id, max_triggers=args.max_triggers, idle_timeout_s=args.idle_timeout,
                progress=progress, on_report=_print_summary,
            )
            print(f"major-update: {n} trigger(s) handled; reports under {runs_dir}")
            return 0
        if args.end is None:
            raise CommandError("--from needs --to (the exclusive end of the range)")
        if args.end <= args.start:
            raise CommandError(f"--to ({args.end}) must be after --from ({args.start})")
        model_id = args.model_id or "drn"
        range_dir = runs_dir / model_id / f"range-{args.start}-{args.end}-seed{args.seed}"
        report = job.run_range(args.bootstrap, topics, model_id, args.start, args.end, cfg, range_dir,
                               base_version=args.base_version, progress=progress, force=args.force, keyed=True)
    except KafkaError as e:
        raise CommandError(f"Kafka at {args.bootstrap} failed ({type(e).__name__}: {e}); is `drnflow up` running?"
                           ) from None
    except (TimeoutError, ValueError) as e:
        raise CommandError(str(e)) from None
    _print_summary(report)
    print(f"report: {Path(report['run_dir']) / 'report.md'}")  # the run's own dir below range_dir
    return 0 if report.get("status") in ("PUBLISHED", "ALREADY_PUBLISHED") else 3


def _print_summary(report: dict[str, Any]) -> None:
    if report.get("skipped_as_done"):
        version = report.get("published_version")
        print(f"major-update {report.get('model_id')}: this range, base and settings already ran "
              f"({report.get('status')}{'' if version is None else f', v{version}'}); "
              "nothing trained or published now; --force runs it again")
        return
    if report.get("offline_markdown"):
        print(report["offline_markdown"])
    print(f"major-update {report.get('model_id')}: {report.get('status')}: {report.get('reason')}"
          + (f" -> v{report['published_version']}" if report.get("published_version") is not None else ""))
