"""`drnflow mixer`: Kuaishou-style mixed ranking of ads and organic items by a Dueling DQN on the
simulator (models/mixer/): `train` logs an exploring mixer and trains the DQN off-policy per seed
(a checkpoint: setup + architecture + weights per seed), `evaluate` compares it with fixed placement
and the greedy per-slot rule on held-out sessions."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError

CHECKPOINT_FILE = "mixer.pt"


def _default_dir() -> Path:
    from operators.paths import state_dir

    return state_dir() / "mixer"


def _slots(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated 1-based slots, got {text!r}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("mixer", help="ads/organic mixed ranking by a Dueling DQN (train, evaluate)",
                              description="Where 0-2 ads go among the organic slots, per request: a Dueling "
                                          "DQN trained off-policy on the simulator, against fixed placement "
                                          "and the greedy per-slot value rule.")
    sub = p.add_subparsers(dest="mixer_command", metavar="STEP", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", type=Path, default=None, help="checkpoint and reports (default: <state>/mixer)")
        q.add_argument("--checkpoint", type=Path, default=None,
                       help=f"checkpoint path (default: <dir>/{CHECKPOINT_FILE})")
        q.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default %(default)s)")
        q.add_argument("--report", type=Path, default=None, help="JSON report path (default: in --dir)")
        q.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")

    tr = sub.add_parser("train", help="log an exploring mixer, train the Dueling DQN off-policy (per seed)")
    common(tr)
    tr.add_argument("--rounds", type=int, default=2,
                    help="log-then-train rounds: the first logs a random mixer, later ones ε-greedy "
                         "around the network so far (default %(default)s)")
    tr.add_argument("--sessions", type=int, default=3000, help="logged sessions per round (default %(default)s)")
    tr.add_argument("--epsilon", type=float, default=0.2, help="exploration of rounds after the first")
    tr.add_argument("--steps", type=int, default=2500, help="Double DQN steps per round (default %(default)s)")
    tr.add_argument("--batch-size", type=int, default=512)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--gamma", type=float, default=0.9, help="discount over pages (default %(default)s)")
    tr.add_argument("--target-every", type=int, default=100, help="target network copy interval (steps)")
    tr.add_argument("--huber-delta", type=float, default=1.0,
                    help="Huber loss threshold, in units of the normalised reward (default %(default)s)")
    tr.add_argument("--hidden", type=int, default=32, help="width of both towers' first layer")
    tr.add_argument("--w-revenue", type=float, default=1.0, help="weight of ad revenue in the reward")
    tr.add_argument("--w-engagement", type=float, default=1.0, help="weight of organic clicks in the reward")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="fixed / greedy / DQN on held-out sessions over seeds (table + JSON)")
    common(ev)
    ev.add_argument("--sessions", type=int, default=2000, help="evaluation sessions per seed (default %(default)s)")
    ev.add_argument("--fixed-slots", type=_slots, default=(3, 7),
                    help="1-based slots of the fixed-placement baseline (default 3,7)")
    ev.set_defaults(func=cmd_evaluate)


def _setup_torch(threads: int) -> None:
    import torch

    if threads < 1:
        raise CommandError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    directory = args.dir or _default_dir()
    return directory, args.checkpoint or directory / CHECKPOINT_FILE


def _write_report(args: argparse.Namespace, directory: Path, name: str, report: dict[str, Any]) -> Path:
    path = args.report if args.report is not None else directory / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _world() -> Any:
    from drnflow import datasets

    try:
        return datasets.world()
    except datasets.DataUnavailable as e:
        raise CommandError(str(e)) from None


def cmd_train(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    from dataclasses import asdict

    from models.mixer.environment import MixerConfig
    from models.mixer.pipeline import MixerSetup, save_checkpoint, train_seed
    from models.mixer.trainer import TrainConfig

    if args.seeds < 1:
        raise CommandError(f"--seeds must be >= 1, got {args.seeds}")
    directory, checkpoint = _paths(args)
    try:
        setup = MixerSetup(
            env=MixerConfig(w_revenue=args.w_revenue, w_engagement=args.w_engagement),
            rounds=args.rounds, sessions_per_round=args.sessions, epsilon=args.epsilon, hidden=args.hidden,
            train=TrainConfig(gamma=args.gamma, learning_rate=args.lr, batch_size=args.batch_size,
                              steps=args.steps, target_every=args.target_every,
                              huber_delta=args.huber_delta))
    except ValueError as e:
        raise CommandError(str(e)) from None
    world = _world()
    started = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        runs.append(train_seed(world, setup, seed, progress=lambda line: print(line, flush=True)))
    save_checkpoint(checkpoint, setup, runs)
    report = {"setup": asdict(setup), "seconds": time.perf_counter() - started,
              "seeds": [{"seed": r.seed, "logged_pages": r.logged_pages, "final_loss": r.final_loss} for r in runs]}
    path = _write_report(args, directory, "train", report)
    print(f"trained {len(runs)} seed(s) in {report['seconds']:.0f} s\ncheckpoint: {checkpoint}\nreport: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    _setup_torch(args.threads)
    from models.mixer.evaluate import evaluate_seeds, format_table, gain, interval
    from models.mixer.pipeline import CheckpointError, load_checkpoint
    from models.mixer.placements import Placements

    if args.seeds < 1:
        raise CommandError(f"--seeds must be >= 1, got {args.seeds}")
    if args.sessions < 1:
        raise CommandError(f"--sessions must be >= 1, got {args.sessions}")
    directory, checkpoint = _paths(args)
    if not checkpoint.exists():
        raise CommandError(f"{checkpoint} does not exist: run `drnflow mixer train` first (same --dir)")
    try:
        setup, networks = load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise CommandError(str(e)) from None
    seeds = list(range(args.seeds))
    missing = [s for s in seeds if s not in networks]
    if missing:
        raise CommandError(f"{checkpoint} has no network for seed(s) {missing}: train with --seeds {args.seeds}")
    slots = tuple(args.fixed_slots)
    placements = Placements(setup.env.slots, setup.env.max_ads, setup.env.min_gap)
    if not all(1 <= x <= setup.env.slots for x in slots) or \
            tuple(sorted(x - 1 for x in slots)) not in placements.placements:
        raise CommandError(f"--fixed-slots {','.join(map(str, slots))} is not a placement of this setup "
                           f"(1-based slots 1..{setup.env.slots}, at most {setup.env.max_ads} ads, "
                           f"{setup.env.min_gap} apart)")
    world = _world()
    started = time.perf_counter()
    try:
        results = evaluate_seeds(
            world, setup, networks, seeds, args.sessions, slots,
            on_seed=lambda s: print(f"seed {s}: {args.sessions} sessions served by each mixer", flush=True))
    except (CheckpointError, ValueError) as e:
        raise CommandError(str(e)) from None
    print(format_table(results, len(seeds)))
    fixed = results[0].name
    gains = gain(results, over=fixed)
    m, h = interval(gains)
    wins = sum(g > 0 for g in gains)
    spread = f" ± {h:.2f}" if len(gains) > 1 else ""
    print(f"DQN − {fixed}, combined: {m:+.2f}{spread} per session (wins on {wins}/{len(gains)} seeds)")
    report = {"sessions": args.sessions, "seeds": seeds, "fixed_slots": list(args.fixed_slots),
              "seconds": time.perf_counter() - started, "dqn_minus_fixed": gains,
              "results": [r.as_dict() for r in results]}
    path = _write_report(args, directory, "evaluate", report)
    print(f"report: {path}")
    return 0
