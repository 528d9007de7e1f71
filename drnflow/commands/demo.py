"""`drnflow demo`: run drnflow end to end on a private stack, then stop everything it started."""

from __future__ import annotations

import argparse
from pathlib import Path

from drnflow.errors import CommandError
from operators.paths import PROJECT_ROOT, state_dir


def cmd_demo(args: argparse.Namespace) -> int:
    state = (args.state_dir or state_dir() / "demo").resolve()
    if args.smoke:
        from drnflow.demo.smoke import run_smoke_demo

        return run_smoke_demo(state, seed=args.seed)
    from drnflow.demo.loop import LoopDemoConfig, run_loop_demo

    try:
        cfg = LoopDemoConfig(out_dir=args.out.resolve(), seed=args.seed, duration_s=args.duration,
                             window=args.window, attribution_window=args.attribution_window, alpha=args.alpha,
                             eta=args.eta, click_model=args.click_model, eval_requests=args.eval_requests,
                             log_impressions=args.log_impressions, log_epsilon=args.log_epsilon,
                             major_every=args.major_every, major_steps=args.major_steps, drift=args.drift,
                             learner=args.learner, explore_lists=args.explore_lists, temperature=args.temperature,
                             learning_rate=args.learning_rate)
    except ValueError as e:
        raise CommandError(str(e)) from None
    return run_loop_demo(cfg, state)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    from dataclasses import fields

    from drnflow.demo.loop import LoopDemoConfig

    d = {f.name: f.default for f in fields(LoopDemoConfig)}  # the demo's defaults live there, once
    p = sub.add_parser("demo", help="run the main job end to end on a private stack",
                       description="Start a private Kafka broker, train the initial DRN model offline on a logging "
                                   "policy's simulated log and publish it, run the "
                                   "minor-update Flink job and the MovieLens user simulator together, show a live "
                                   "table of windowed win-rates, compare the learned model with the initial model "
                                   "and a frozen-model control, write a PNG plot, and stop everything it started.")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the demo's broker lives (default: <state>/demo; wiped at start)")
    p.add_argument("--seed", type=int, default=d["seed"], help="seed of every random choice (default %(default)s)")
    p.add_argument("--smoke", action="store_true",
                   help="only the foundation check: Avro records -> a PyFlink window count -> Kafka")
    p.add_argument("--duration", type=float, default=d["duration_s"],
                   help="wall seconds of simulated traffic (default %(default)s)")
    p.add_argument("--window", default=d["window"], help="DBGD window in event time (default '%(default)s')")
    p.add_argument("--attribution-window", default=d["attribution_window"],
                   help="click attribution window (default '%(default)s')")
    p.add_argument("--alpha", type=float, default=d["alpha"], help="exploration scale of ΔW (default %(default)s)")
    p.add_argument("--eta", type=float, default=d["eta"], help="DBGD step size (default %(default)s)")
    p.add_argument("--click-model", default=d["click_model"],
                   choices=["perfect", "navigational", "informational", "pbm"],
                   help="simulated users' click model (default %(default)s: CTR rises with ranking quality)")
    p.add_argument("--drift", default=d["drift"], choices=["none", "news"],
                   help="news: a world that changes (items published, aging and expiring, genre popularity walking; "
                        "models/simulator/drift.py), so a frozen model falls behind; none: a static world "
                        "(default %(default)s)")
    p.add_argument("--learner", default=d["learner"], choices=["dbgd", "mgd", "pdgd"],
                   help="dbgd: one explore network per round (team draft); mgd: --explore-lists of them "
                        "(team-draft multileaving, credit per list, the mean of the winners); pdgd: Plackett–Luce "
                        "sampled lists and one PDGD gradient step per window in the job (default %(default)s)")
    p.add_argument("--temperature", type=float, default=d["temperature"],
                   help="with --learner pdgd: the ranker samples from softmax(Q / temperature) (default %(default)s)")
    p.add_argument("--learning-rate", type=float, default=d["learning_rate"],
                   help="with --learner pdgd: the job's PDGD step size per window (default %(default)s)")
    p.add_argument("--explore-lists", type=int, default=d["explore_lists"], metavar="N",
                   help="with --learner mgd: explore networks per round (default %(default)s)")
    p.add_argument("--eval-requests", type=int, default=d["eval_requests"],
                   help="simulated requests for the offline comparison of models (default %(default)s)")
    p.add_argument("--log-impressions", type=int, default=d["log_impressions"],
                   help="DRN's offline start: requests the logging policy serves before the initial model is "
                        "trained on its log (default %(default)s; 0: start from a random network)")
    p.add_argument("--log-epsilon", type=float, default=d["log_epsilon"],
                   help="share of the logging policy's requests shown in a random order (default %(default)s)")
    p.add_argument("--major-every", default=d["major_every"],
                   help="event time between the job's major-update triggers, which a `major-update --follow` "
                        "the demo starts runs ('none': no major updates) (default '%(default)s')")
    p.add_argument("--major-steps", type=int, default=d["major_steps"],
                   help="DDQN steps of each major update (default %(default)s)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "out" / "demo",
                   help="where the plot and summary go (default out/demo)")
    p.set_defaults(func=cmd_demo)
