"""`drnflow simulate`: simulated MovieLens users meet a ranking policy; impressions and clicks go to
Kafka in event time (paced by --speedup, or as fast as possible)."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="produce simulated impressions and clicks (MovieLens-100K users, cascade click models) to Kafka",
        description="Simulated users (MovieLens-100K, grades completed by matrix factorisation) arrive "
        "in real rating-timestamp order, a policy ranks candidates, a click model clicks; Impression "
        "and Click records (Avro) are written to {prefix}impressions and {prefix}clicks.",
    )
    p.add_argument("--bootstrap", default="127.0.0.1:9092",
                   help="Kafka bootstrap servers (default %(default)s)")
    p.add_argument("--topic-prefix", default="", help="prefix of the topic names (default none)")
    p.add_argument("--impressions", type=int, default=10_000,
                   help="impressions to produce (default %(default)s)")
    p.add_argument("--model-id", default="drn", help="model_id written on impressions (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default %(default)s)")
    p.add_argument("--click-model", default="navigational",
                   choices=["perfect", "navigational", "informational", "pbm"], help="default %(default)s")
    p.add_argument("--policy", default="random", choices=["random", "popular", "oracle", "drn"],
                   help="stand-alone ranking policy, or drn: the DRN ranker (operators/ranker.py) "
                   "following {prefix}model-weights for --model-id (default %(default)s)")
    p.add_argument("--weights-timeout", type=float, default=30.0,
                   help="with --policy drn: seconds to wait for a first ModelWeights (default %(default)s)")
    p.add_argument("--k", type=int, default=10, help="slots per impression (default %(default)s)")
    p.add_argument("--candidates", type=int, default=100, help="candidates per request (default %(default)s)")
    p.add_argument("--arrivals", default="timestamps", choices=["timestamps", "poisson"],
                   help="real MovieLens rating times, or a Poisson rate (default %(default)s)")
    p.add_argument("--time-compression", type=float, default=1000.0,
                   help="real rating-time gaps are divided by this (timestamps mode; default %(default)s)")
    p.add_argument("--rate", type=float, default=5.0,
                   help="arrivals per event-time second (poisson mode; default %(default)s)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speedup", type=float, default=None,
                      help="pace output so event time runs X times faster than the wall clock")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default)")
    p.add_argument("--truth-out", type=Path, default=None,
                   help="write request_id,item_id,position,grade of every shown slot to this CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)


def _follow_drn(args: argparse.Namespace, topic: str, world: Any) -> tuple[Any, Any]:
    """A DRN Ranker kept on the latest ModelWeights of --model-id by a WeightsFollower thread."""
    from operators.ranker import Ranker, RankerConfig
    from operators.weights_follower import WeightsFollower

    ranker = Ranker(RankerConfig(model_id=args.model_id, base_seed=args.seed))
    follower = WeightsFollower.for_kafka(args.bootstrap, ranker.apply_weights, topic=topic,
                                         model_ids=[args.model_id]).start()
    deadline = time.monotonic() + args.weights_timeout
    while ranker.version is None and time.monotonic() < deadline and follower.alive:
        time.sleep(0.1)
    if ranker.version is None:
        follower.stop()
        raise CommandError(
            f"no ModelWeights for model {args.model_id!r} on {topic} within {args.weights_timeout:g} s; "
            "publish an initial version first (or use --policy random|popular|oracle)"
        )
    served = ranker.served
    dims = (served.scorer.state_dim, served.scorer.action_dim) if served else None
    if dims != (world.state_dim, world.action_dim):
        follower.stop()
        raise CommandError(
            f"model {args.model_id!r} takes (state, action) dims {dims}, the simulator's features are "
            f"({world.state_dim}, {world.action_dim})"
        )
    return ranker, follower


def _build(args: argparse.Namespace, weights_topic: str = "") -> tuple[Any, Any]:
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, World, WorldConfig
    from models.simulator.fetch import DataUnavailable
    from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy

    if args.impressions < 1:
        raise CommandError(f"--impressions must be >= 1, got {args.impressions}")
    if args.speedup is not None and not args.speedup > 0:
        raise CommandError(f"--speedup must be > 0, got {args.speedup}")
    try:
        arrivals = ArrivalConfig(mode=args.arrivals, time_compression=args.time_compression,
                                 rate_per_s=args.rate)
        sim_cfg = SimulatorConfig(seed=args.seed, click_model=args.click_model, k=args.k, arrivals=arrivals)
        world_cfg = WorldConfig(seed=args.seed, n_candidates=args.candidates)
    except ValueError as e:
        raise CommandError(str(e)) from None
    try:
        world = World.build(world_cfg)
    except DataUnavailable as e:
        raise CommandError(str(e)) from None
    except ValueError as e:
        raise CommandError(str(e)) from None
    follower = None
    if args.policy == "drn":
        policy, follower = _follow_drn(args, weights_topic, world)
    elif args.policy == "random":
        policy = RandomPolicy(args.model_id, seed=args.seed)
    elif args.policy == "popular":
        policy = PopularPolicy(args.model_id)
    else:
        users = {u: i for i, u in enumerate(world.ml.user_ids)}
        policy = OraclePolicy(world.grades, users, world.item_index, args.model_id)
    return Simulator(world, policy, sim_cfg), follower


def cmd_simulate(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from drnflow.serde import encode
    from drnflow.topics import TopicNames
    from models.simulator.stream import event_time_order

    try:
        topics = TopicNames(args.topic_prefix)
    except ValueError as e:
        raise CommandError(str(e)) from None
    sim, follower = _build(args, topics.model_weights)
    try:
        producer = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=20, acks="all")
    except KafkaError as e:
        if follower:
            follower.stop()
        raise CommandError(
            f"cannot reach Kafka at {args.bootstrap} ({type(e).__name__}); is `drnflow up` running?"
        ) from None
    truth_file = args.truth_out.open("w", newline="", encoding="utf-8") if args.truth_out else None
    truth = csv.writer(truth_file) if truth_file else None
    if truth:
        truth.writerow(["request_id", "item_id", "position", "grade"])
    bar = tqdm(total=args.impressions, unit="imp", disable=args.no_progress)
    counts = {"impression": 0, "click": 0}
    wall0 = time.monotonic()
    event0: int | None = None

    def steps() -> Any:
        for step in sim.run(args.impressions):
            if truth:
                truth.writerows(step.truth)
            yield step

    try:
        for kind, record in event_time_order(steps()):
            t = int(record["event_time"])
            if event0 is None:
                event0 = t
            if args.speedup:
                ahead = (t - event0) / 1000.0 / args.speedup - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
            is_imp = kind == "impression"
            topic, schema = (topics.impressions, "Impression") if is_imp else (topics.clicks, "Click")
            producer.send(topic, key=str(record["request_id"]).encode(),
                          value=encode(schema, record, check=False), timestamp_ms=t)
            counts[kind] += 1
            if kind == "impression":
                bar.update(1)
        producer.flush(timeout=60)
    except KafkaError as e:
        raise CommandError(f"Kafka refused a record ({type(e).__name__}: {e})") from None
    finally:
        if follower:
            follower.stop()
        bar.close()
        producer.close(timeout=10)
        if truth_file:
            truth_file.close()
    took = time.monotonic() - wall0
    print(f"simulate: {counts['impression']} impressions, {counts['click']} clicks to "
          f"{topics.impressions}/{topics.clicks} in {took:.1f} s "
          f"({counts['impression'] / max(took, 1e-9):.0f} imp/s), click model {args.click_model}, "
          f"policy {args.policy}, seed {args.seed}")
    return 0
