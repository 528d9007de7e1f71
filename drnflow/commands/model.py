"""`drnflow model init | list | rollback`: start a model, see its versions, go back to one.

The model-weights topic is the single source of truth: `init` publishes a first MAJOR (seeded, or taken
from a `drnflow export` file) with the explore parameters rankers and learners must share; `rollback`
republishes an earlier version's weights as a new ROLLBACK version, which the minor-update job rebases on
and rankers serve, exactly as they would a MAJOR.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from drnflow.errors import CommandError
from operators.kafka_io.addressing import add_kafka_arguments


def _log(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every decodable ModelWeights record of the topic, in topic order (fails clearly when it is missing)."""
    from operators.kafka_io import require_broker, require_topics
    from operators.model_weights_log import read_model_weights
    from schemas.topics import TopicNames

    topic = TopicNames(args.topic_prefix).model_weights
    require_broker(args.bootstrap)
    require_topics(args.bootstrap, [topic])
    records, _ = read_model_weights(args.bootstrap, topic, "drnflow-model", timeout_s=args.timeout)
    return list(records)


def _publish(args: argparse.Namespace, record: dict[str, Any]) -> None:
    from operators import kafka_io
    from schemas.serde import encode
    from schemas.topics import TopicNames

    topic = TopicNames(args.topic_prefix).model_weights
    producer = kafka_io.producer(args.bootstrap, "drnflow-model", linger_ms=0)
    try:
        producer.send(topic, key=str(record["model_id"]).encode(), value=encode("ModelWeights", record)).get(timeout=60)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    print(f"model: published {record['kind']} {record['model_id']!r} v{record['version']} to {topic}"
          + (f" (weights of v{record['parent_version']})" if record["kind"] == "ROLLBACK" else ""))


def _simulator_dims(seed: int) -> tuple[int, int]:
    """(state, action) feature sizes of the simulator's world, which a served DRN must take."""
    from drnflow import datasets
    from drnflow.datasets import DataUnavailable
    from models.simulator import WorldConfig

    try:
        world = datasets.world(WorldConfig(seed=seed))
    except (DataUnavailable, ValueError) as e:
        raise CommandError(f"{e}; or give --state-dim and --action-dim") from None
    return int(world.state_dim), int(world.action_dim)


def _from_file(path: str, model_id: str, version: int | None) -> dict[str, Any]:
    """The ModelWeights record of `model_id` (the last one, or `version`) in a `drnflow export` file."""
    from fastavro import reader

    try:
        with open(path, "rb") as f:
            found = [dict(r) for r in reader(f) if isinstance(r, dict) and r.get("model_id") == model_id]
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot read {path}: {e}") from None
    if version is not None:
        found = [r for r in found if int(r["version"]) == version]
    if not found:
        which = f"v{version} of " if version is not None else ""
        raise CommandError(f"{path} holds no ModelWeights record for {which}model {model_id!r}")
    return found[-1]


def cmd_init(args: argparse.Namespace) -> int:
    from models.initial_model import initial_drn_record
    from models.perturbation import DEFAULT_EXPLORE, ExploreParams
    from models.weights import parse_model_weights_record

    records = _log(args)
    mine = [r for r in records if r["model_id"] == args.model_id]
    if mine and not args.force:
        raise CommandError(f"model {args.model_id!r} already has {len(mine)} versions (newest "
                           f"v{max(int(r['version']) for r in mine)}); add --force to publish a new MAJOR on top")
    version = max((int(r["version"]) for r in mine), default=0) + 1
    now = int(time.time() * 1000)
    try:
        explore = ExploreParams(DEFAULT_EXPLORE.alpha if args.alpha is None else args.alpha,
                                args.perturbation or DEFAULT_EXPLORE.perturbation)
    except ValueError as e:
        raise CommandError(str(e), code=2) from None
    if args.from_file:
        source = _from_file(args.from_file, args.model_id, args.version)
        record = {**source, "version": version, "parent_version": None, "kind": "MAJOR", "created_at": now,
                  "window_start": None, "window_end": None, "explore_seeds": []}
        if args.alpha is not None or args.perturbation is not None:
            record["architecture"] = explore.written_into(str(record.get("architecture") or ""))
    else:
        state_dim, action_dim = ((args.state_dim, args.action_dim) if args.state_dim and args.action_dim
                                 else _simulator_dims(args.world_seed))
        record = initial_drn_record(args.model_id, state_dim, action_dim, args.seed, version=version, created_at=now,
                                    explore=explore)
    try:
        parse_model_weights_record(record)
    except ValueError as e:
        raise CommandError(f"refusing to publish: {e}") from None
    _publish(args, record)
    return 0


def version_notes(record: dict[str, Any]) -> str:
    """What a version's record asks of rankers and the job beyond its weights, in words for `model list`."""
    from models.perturbation import ExploreParams
    from models.probation import ProbationParams

    architecture = str(record.get("architecture") or "")
    notes = []
    explore = ExploreParams.read_from(architecture)
    if explore is not None:
        notes.append(f"explore alpha {explore.alpha:g}, {explore.perturbation.value}")
    probation = ProbationParams.read_from(architecture)
    if probation is not None and record.get("kind") == "MAJOR":
        notes.append(f"on probation: {probation.describe()} (v{record.get('parent_version')})")
    if record.get("kind") == "ROLLBACK":
        notes.append(f"v{record.get('parent_version')}'s weights again")
    return "; ".join(notes)


def cmd_list(args: argparse.Namespace) -> int:
    from drnflow.tools.timespec import format_time_ms

    records = [r for r in _log(args) if args.model_id in (None, r["model_id"])]
    if not records:
        print(f"no versions{f' of model {args.model_id!r}' if args.model_id else ''} on the topic")
        return 0
    print(f"{'model':<12} {'version':>7} {'kind':<8} {'parent':>6}  {'created (UTC)':<24} {'window start':<24} notes")
    for r in records:
        parent = "" if r["parent_version"] is None else str(r["parent_version"])
        window = "" if r["window_start"] is None else format_time_ms(int(r["window_start"]))
        print(f"{r['model_id']:<12} {r['version']:>7} {r['kind']:<8} {parent:>6}  "
              f"{format_time_ms(int(r['created_at'])):<24} {window:<24} {version_notes(r)}".rstrip())
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    records = [r for r in _log(args) if r["model_id"] == args.model_id]
    if not records:
        raise CommandError(f"model {args.model_id!r} has no versions on the topic")
    target = [r for r in records if int(r["version"]) == args.to]
    if not target:
        known = sorted({int(r["version"]) for r in records})
        raise CommandError(f"model {args.model_id!r} has no v{args.to}; its versions run "
                           f"v{known[0]}..v{known[-1]} (`drnflow model list {args.model_id}`)")
    newest = max(int(r["version"]) for r in records)
    source = target[-1]
    record = {**source, "version": newest + 1, "parent_version": args.to, "kind": "ROLLBACK",
              "created_at": int(time.time() * 1000), "window_start": None, "window_end": None, "explore_seeds": []}
    _publish(args, record)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("model", help="start a model, list its versions, roll back to one",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        add_kafka_arguments(q)
        q.add_argument("--timeout", type=float, default=30.0, help="seconds to read the topic (default %(default)s)")

    init = groups.add_parser("init", help="publish a first MAJOR version of a model",
                             description="Publish MAJOR v1 (or the next version, with --force) of MODEL_ID on "
                                         "{prefix}model-weights: a DRN network from --seed sized for the "
                                         "simulator's features, or the weights of a `drnflow export` file.")
    init.add_argument("model_id", metavar="MODEL_ID")
    common(init)
    init.add_argument("--seed", type=int, default=0, help="seed of the network's initial weights (default 0)")
    init.add_argument("--from-file", default=None, metavar="PATH",
                      help="take the weights from this `drnflow export` file of a model-weights topic")
    init.add_argument("--version", type=int, default=None, help="with --from-file: which version (default: last)")
    init.add_argument("--alpha", type=float, default=None, help="exploration scale of ΔW (default 0.1)")
    init.add_argument("--perturbation", choices=["multiplicative", "unit_sphere"], default=None,
                      help="explore direction (default multiplicative)")
    init.add_argument("--state-dim", type=int, default=None, help="state features (default: the simulator's)")
    init.add_argument("--action-dim", type=int, default=None, help="action features (default: the simulator's)")
    init.add_argument("--world-seed", type=int, default=0, help="seed of the simulator world whose sizes to use")
    init.add_argument("--force", action="store_true", help="publish even when the model has versions already")
    init.set_defaults(func=cmd_init)

    ls = groups.add_parser("list", help="the versions on {prefix}model-weights, in topic order",
                           description="List every version (MAJOR, MINOR, ROLLBACK) in topic order.")
    ls.add_argument("model_id", nargs="?", default=None, metavar="MODEL_ID", help="only this model")
    common(ls)
    ls.set_defaults(func=cmd_list)

    rb = groups.add_parser("rollback", help="serve an earlier version again, as a new ROLLBACK version",
                           description="Republish the weights of MODEL_ID v--to as ROLLBACK v(newest + 1), parent "
                                       "--to. The minor-update job rebases on it and rankers serve it.")
    rb.add_argument("model_id", metavar="MODEL_ID")
    rb.add_argument("--to", type=int, required=True, metavar="VERSION", help="the version to go back to")
    common(rb)
    rb.set_defaults(func=cmd_rollback)
