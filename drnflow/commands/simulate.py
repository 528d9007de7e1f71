"""`drnflow simulate`: simulated MovieLens users meet a ranking policy; impressions and clicks go to
Kafka in event time (paced by --speedup, or as fast as possible)."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError, duration_ms_argument
from operators.kafka_io.addressing import add_kafka_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="produce simulated impressions and clicks (MovieLens-100K users, cascade click models) to Kafka",
        description="Simulated users (MovieLens-100K, grades completed by matrix factorisation) arrive "
        "in real rating-timestamp order, a policy ranks candidates, a click model clicks; Impression "
        "and Click records (Avro) are written to {prefix}impressions and {prefix}clicks.",
    )
    add_kafka_arguments(p)
    p.add_argument("--impressions", type=int, default=10_000,
                   help="impressions to produce (default %(default)s)")
    p.add_argument("--model-id", default="drn", help="model_id written on impressions (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default %(default)s)")
    p.add_argument("--click-model", default="navigational",
                   choices=["perfect", "navigational", "informational", "pbm"], help="default %(default)s")
    p.add_argument("--policy", default="random", choices=["random", "popular", "oracle", "drn"],
                   help="stand-alone ranking policy, or drn: the DRN ranker (operators/ranker.py) "
                   "following {prefix}model-weights for --model-id (default %(default)s)")
    p.add_argument("--explore", type=float, default=0.0, metavar="EPSILON",
                   help="with --policy popular or oracle: show this share of requests (chosen by a seeded hash "
                   "of the request id) in a random order, a logging policy with exploration for DRN's offline "
                   "start (default %(default)s)")
    p.add_argument("--reranker", action="store_true",
                   help="with --policy drn: DRN keeps its top --top-m candidates, the GE pointer generator "
                   "(following {prefix}model-weights for --reranker-model-id) orders the shown list and "
                   "explores; impressions are credited to the generator")
    p.add_argument("--reranker-model-id", default="ge", help="the generator's model_id (default %(default)s)")
    p.add_argument("--top-m", type=int, default=50,
                   help="with --reranker: DRN candidates the generator chooses from (default %(default)s)")
    p.add_argument("--publish-initial", action="store_true",
                   help="with --policy drn: first publish a seeded DRN MAJOR (and with --reranker a seeded "
                   "generator MAJOR) for a model that has none on {prefix}model-weights, carrying the explore "
                   "parameters below")
    p.add_argument("--alpha", type=float, default=None,
                   help="with --policy drn: exploration scale of ΔW. Written into a --publish-initial version; "
                   "given, it must equal the served version's (default: the served version's, 0.1 if it "
                   "does not say)")
    p.add_argument("--perturbation", default=None, choices=["multiplicative", "unit_sphere"],
                   help="with --policy drn: explore direction, like --alpha (default: the served version's)")
    p.add_argument("--learner", default="dbgd", choices=["dbgd", "mgd", "pdgd"],
                   help="with --policy drn: dbgd interleaves the served version with one explore network (team "
                   "draft); mgd multileaves it with --explore-lists of them (team-draft multileaving; the job "
                   "credits each explore list against the current one and moves W to the mean of the winners: "
                   "Schuth et al.'s MGD); pdgd shows a Plackett–Luce sample of the served version's scores "
                   "and logs what the job's `--learner pdgd` needs (default %(default)s)")
    p.add_argument("--temperature", type=float, default=0.01,
                   help="with --learner pdgd: lists are sampled from softmax(Q / temperature) (default %(default)s)")
    p.add_argument("--explore-lists", type=int, default=4, metavar="N",
                   help="with --learner mgd: explore networks per round (default %(default)s)")
    p.add_argument("--round", dest="round_ms", type=_round_ms, default="30 min", metavar="DURATION",
                   help="with --policy drn: explore seeds rotate, and a MAJOR on probation is tried against its "
                   "parent, per round of event time; give the minor-update job's --window so that one round is "
                   "one window (default '%(default)s', DRN's window)")
    p.add_argument("--weights-timeout", type=float, default=30.0,
                   help="with --policy drn: seconds to wait for a first ModelWeights (default %(default)s)")
    p.add_argument("--drift", default="none", choices=["none", "news"],
                   help="none: a static world; news: items publish, age and expire, new ones keep coming and "
                   "genre popularity walks (seeded by --seed; models/simulator/drift.py) (default %(default)s)")
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
    start = p.add_mutually_exclusive_group()
    start.add_argument("--start-time", default=None, metavar="TIME",
                       help="event time of the run's start: epoch ms or ISO-8601 (default 2024-01-01T00:00:00Z)")
    start.add_argument("--continue", dest="continue_run", action="store_true",
                       help="start one second after the newest event time on {prefix}impressions and "
                       "{prefix}clicks, so successive runs never overlap (a fresh topic starts at the default)")
    p.add_argument("--truth-out", type=Path, default=None,
                   help="write request_id,item_id,position,grade of every shown slot to this CSV")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)


def _round_ms(text: str) -> int:
    ms = duration_ms_argument(text)
    if ms < 1:
        raise argparse.ArgumentTypeError(f"a round must last at least 1 ms, got {text!r}")
    return ms


def _follow_drn(args: argparse.Namespace, topic: str, world: Any) -> tuple[Any, Any]:
    """A DRN Ranker (wrapped in a RerankingRanker with --reranker) kept on the latest ModelWeights of its
    model id(s) by a WeightsFollower thread."""
    from operators.pdgd_ranker import PdgdRanker
    from operators.ranker import Ranker, RankerConfig
    from operators.weights_follower import WeightsFollower

    explore = _explore_of(args)
    if args.explore_lists < 1:
        raise CommandError(f"--explore-lists must be >= 1, got {args.explore_lists}")
    if args.learner == "pdgd" and args.reranker:
        raise CommandError("--learner pdgd samples DRN's own list; it does not go with --reranker", code=2)
    config = RankerConfig(model_id=args.model_id, base_seed=args.seed, alpha=explore.alpha,
                          perturbation=explore.perturbation, round_ms=args.round_ms,
                          n_explore=args.explore_lists if args.learner == "mgd" else 1)
    try:
        drn = PdgdRanker(config, temperature=args.temperature) if args.learner == "pdgd" else Ranker(config)
    except ValueError as e:
        raise CommandError(f"--temperature: {e}", code=2) from None
    policy: Any = _reranking(args, drn, world) if args.reranker else drn
    model_ids = [args.model_id, *([policy.config.model_id] if args.reranker else [])]
    if args.publish_initial:
        _publish_initial(args, topic, world, policy)
    follower = WeightsFollower.for_kafka(args.bootstrap, policy.apply_weights, topic=topic,
                                         model_ids=model_ids).start()
    deadline = time.monotonic() + args.weights_timeout
    while (drn.version is None or policy.version is None) and time.monotonic() < deadline and follower.alive:
        time.sleep(0.1)
    if drn.version is None:
        follower.stop()
        raise CommandError(
            f"no ModelWeights for model {args.model_id!r} on {topic} within {args.weights_timeout:g} s; "
            "add --publish-initial to publish a seeded one first (or use --policy random|popular|oracle)"
        )
    if policy.version is None:
        follower.stop()
        gen_id = policy.config.model_id
        refused = [r.reason for r in follower.handler.rejected if r.model_id == gen_id]
        raise CommandError(
            f"no usable generator ModelWeights for model {gen_id!r} on {topic} within "
            f"{args.weights_timeout:g} s{f' (last refused: {refused[-1]})' if refused else ''}; "
            "add --publish-initial to publish a seeded generator MAJOR first"
        )
    served = drn.served
    if served is not None and (args.alpha is not None or args.perturbation is not None):
        theirs = drn.explore_params(served)
        if theirs != explore:
            follower.stop()
            raise CommandError(
                f"model {args.model_id!r} v{served.version} explores with {theirs.describe()}, but --alpha/"
                f"--perturbation say {explore.describe()}; drop them to serve the version as it is"
            )
    dims = (served.scorer.state_dim, served.scorer.action_dim) if served else None
    if dims != (world.state_dim, world.action_dim):
        follower.stop()
        raise CommandError(
            f"model {args.model_id!r} takes (state, action) dims {dims}, the simulator's features are "
            f"({world.state_dim}, {world.action_dim})"
        )
    return policy, follower


def _explore_of(args: argparse.Namespace) -> Any:
    """The explore parameters given on the command line, completed with DEFAULT_EXPLORE."""
    from models.perturbation import DEFAULT_EXPLORE, ExploreParams

    try:
        return ExploreParams(DEFAULT_EXPLORE.alpha if args.alpha is None else args.alpha,
                             args.perturbation or DEFAULT_EXPLORE.perturbation)
    except ValueError as e:
        raise CommandError(str(e), code=2) from None


def _reranking(args: argparse.Namespace, drn: Any, world: Any) -> Any:
    """DRN top-M then the GE generator, shaped by the MovieLens world's features (decade, first genre)."""
    from models.ge.catalog_movielens import MovieLensCategories
    from operators.reranker import GeReranker, RerankerConfig, RerankingRanker

    try:
        cats = MovieLensCategories()
        reranker = GeReranker(
            RerankerConfig(model_id=args.reranker_model_id, top_m=args.top_m, base_seed=args.seed,
                           round_ms=drn.config.round_ms),
            _generator_config(world, cats), cats)
        return RerankingRanker(drn, reranker)
    except ValueError as e:
        raise CommandError(str(e)) from None


def _generator_config(world: Any, cats: Any) -> Any:
    from models.ge.pointer_generator import GeneratorConfig

    return GeneratorConfig(item_dim=world.action_dim, user_dim=world.state_dim, n_shops=cats.n_shops,
                           n_types=cats.n_types)


def _publish_initial(args: argparse.Namespace, topic: str, world: Any, policy: Any) -> None:
    """Publish a seeded MAJOR for the generator when the topic has no MAJOR of its architecture, and for
    DRN when the topic has no version of it at all (versions continue the topic's numbering)."""
    from kafka.errors import KafkaError

    from models.initial_model import initial_drn_record
    from operators.model_weights_log import read_weights_log

    try:
        log = read_weights_log(args.bootstrap, topic, timeout_s=args.weights_timeout)
    except (KafkaError, ValueError, TimeoutError) as e:
        raise CommandError(f"cannot read {topic} at {args.bootstrap} ({type(e).__name__}: {e})") from None
    now = int(time.time() * 1000)
    records = []
    if args.model_id not in log.max_version:
        records.append(initial_drn_record(args.model_id, world.state_dim, world.action_dim, args.seed, created_at=now,
                                          explore=_explore_of(args)))
    if args.reranker:
        records += _initial_generator(args, log, policy, now)
    if not records:
        return
    _publish(args, topic, records)


def _initial_generator(args: argparse.Namespace, log: Any, policy: Any, now: int) -> list[dict[str, Any]]:
    """A seeded generator MAJOR unless the topic has a MAJOR of this generator architecture."""
    from operators.reranker import generator_config_from_architecture, initial_generator_record

    gen_id, gen_cfg = policy.config.model_id, policy.reranker.generator_config
    major = log.latest_major.get(gen_id)
    try:
        has_generator = major is not None and generator_config_from_architecture(major["architecture"]) == gen_cfg
    except (ValueError, TypeError):
        has_generator = False
    if has_generator:
        return []
    return [initial_generator_record(gen_id, gen_cfg, args.seed, now, version=log.max_version.get(gen_id, 0) + 1)]


def _publish(args: argparse.Namespace, topic: str, records: list[dict[str, Any]]) -> None:
    from kafka.errors import KafkaError

    from operators import kafka_io
    from schemas.serde import encode

    try:
        producer = kafka_io.producer(args.bootstrap, "drnflow-simulate-publish", linger_ms=0)
        for r in records:
            producer.send(topic, key=str(r["model_id"]).encode(), value=encode("ModelWeights", r))
        producer.flush(timeout=60)
        producer.close(timeout=10)
    except KafkaError as e:
        raise CommandError(f"could not publish initial weights to {topic} ({type(e).__name__}: {e})") from None
    for r in records:
        print(f"simulate: published initial MAJOR {r['model_id']!r} v{r['version']} to {topic}")


def _start_ms(args: argparse.Namespace, topics: Any) -> int | None:
    """The run's first event time from --start-time or --continue; None keeps the simulator's default."""
    from drnflow.tools.monitor_io import newest_event
    from drnflow.tools.timespec import format_time_ms, parse_time_ms
    if args.start_time is not None:
        try:
            start = parse_time_ms(args.start_time)
        except ValueError as e:
            raise CommandError(f"--start-time: {e}", code=2) from None
        if start < 0:
            raise CommandError(f"--start-time must be at or after 1970-01-01, got {args.start_time}", code=2)
        return start
    if not args.continue_run:
        return None
    newest = newest_event(args.bootstrap, topics)
    if newest is None:
        print(f"simulate: {topics.impressions} and {topics.clicks} are empty; starting at the default time")
        return None
    start = newest + 1000
    print(f"simulate: continuing after the newest event time {format_time_ms(newest)}: "
          f"starting at {format_time_ms(start)}")
    return start


def _check_flags(args: argparse.Namespace) -> None:
    """What the flags alone can say is wrong, said before any broker is asked."""
    if args.impressions < 1:
        raise CommandError(f"--impressions must be >= 1, got {args.impressions}")
    if args.reranker and args.policy != "drn":
        raise CommandError("--reranker re-ranks the DRN ranker's top candidates; use it with --policy drn")
    if args.publish_initial and args.policy != "drn":
        raise CommandError("--publish-initial publishes the served model's first version; use it with --policy drn")
    if not 0.0 <= args.explore <= 1.0:
        raise CommandError(f"--explore must be in [0, 1], got {args.explore}")
    if args.explore and args.policy not in ("popular", "oracle"):
        raise CommandError("--explore mixes random orders into a stand-alone policy; use it with --policy popular "
                           "or oracle (random already explores; drn explores by its own perturbations)")
    if args.speedup is not None and not args.speedup > 0:
        raise CommandError(f"--speedup must be > 0, got {args.speedup}")


def _build(args: argparse.Namespace, weights_topic: str = "", start_ms: int | None = None) -> tuple[Any, Any]:
    from drnflow import datasets
    from drnflow.datasets import DataUnavailable
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, WorldConfig
    from models.simulator.drift import DriftConfig
    from models.simulator.policies import ExploringPolicy, OraclePolicy, PopularPolicy, RandomPolicy

    try:
        arrivals = ArrivalConfig(mode=args.arrivals, time_compression=args.time_compression,
                                 rate_per_s=args.rate, **({} if start_ms is None else {"start_ms": start_ms}))
        sim_cfg = SimulatorConfig(seed=args.seed, click_model=args.click_model, k=args.k, arrivals=arrivals,
                                  drift=DriftConfig(kind=args.drift, seed=args.seed))
        world_cfg = WorldConfig(seed=args.seed, n_candidates=args.candidates)
    except ValueError as e:
        raise CommandError(str(e)) from None
    try:
        world = datasets.world(world_cfg)
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
    sim = Simulator(world, policy, sim_cfg)
    if isinstance(policy, OraclePolicy):
        policy.drift = sim.drift  # the oracle ranks by the grades of the moment in a drifting world
    if args.explore:
        sim.policy = ExploringPolicy(policy, args.explore, model_id=args.model_id, seed=args.seed)
    return sim, follower


def cmd_simulate(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from operators.sim_producer import EventWriter, produce_steps
    from schemas.topics import TopicNames

    try:
        topics = TopicNames(args.topic_prefix)
    except ValueError as e:
        raise CommandError(str(e)) from None
    _check_flags(args)
    from operators.kafka_io import require_broker, require_topics

    require_broker(args.bootstrap)
    wanted = [topics.impressions, topics.clicks] + ([topics.model_weights] if args.policy == "drn" else [])
    require_topics(args.bootstrap, wanted)
    sim, follower = _build(args, topics.model_weights, _start_ms(args, topics))
    try:
        writer = EventWriter(args.bootstrap, topics)
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
    counts = writer.counts
    wall0 = time.monotonic()
    event0: int | None = None

    def steps() -> Any:
        for step in sim.run(args.impressions):
            if truth:
                truth.writerows(step.truth)
            yield step

    def pace(kind: str, record: dict[str, Any]) -> None:
        nonlocal event0
        t = int(record["event_time"])
        if event0 is None:
            event0 = t
        if args.speedup:
            ahead = (t - event0) / 1000.0 / args.speedup - (time.monotonic() - wall0)
            if ahead > 0:
                time.sleep(ahead)
        if kind == "impression":
            bar.update(1)

    try:
        produce_steps(steps(), writer, pace)
    except KafkaError as e:
        hint = ("; the broker refuses record timestamps (event time) more than message.timestamp.after.max.ms "
                "(1 h by default) ahead of its clock: use an earlier --start-time"
                if "Timestamp" in type(e).__name__ or "Timestamp" in str(e) else "")
        raise CommandError(f"Kafka refused a record ({counts['impression']} impressions sent): "
                           f"{type(e).__name__}: {e}{hint}") from None
    finally:
        if follower:
            follower.stop()
        bar.close()
        writer.close()
        if truth_file:
            truth_file.close()
    took = time.monotonic() - wall0
    print(f"simulate: {counts['impression']} impressions, {counts['click']} clicks to "
          f"{topics.impressions}/{topics.clicks} in {took:.1f} s "
          f"({counts['impression'] / max(took, 1e-9):.0f} imp/s), click model {args.click_model}, "
          f"policy {args.policy}, seed {args.seed}")
    return 0
