"""`drnflow up | status | down`: the local Kafka broker and, with --cluster, a Flink session cluster."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from drnflow.cli import CommandError, duration_ms_argument
from drnflow.stack.flink import PROMETHEUS_PORTS
from operators.jars import SetupError
from operators.kafka_io.addressing import add_prefix_argument
from operators.paths import state_dir


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"drnflow: environment variable {name}={raw!r} is not an integer") from None


def add_stack_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where broker/cluster data, logs and pid files live (env DRNFLOW_STATE; "
                        "default: .state in the checkout)")
    p.add_argument("--kafka-port", type=int, default=_env_int("DRNFLOW_KAFKA_PORT", 9092),
                   help="broker port on 127.0.0.1 (env DRNFLOW_KAFKA_PORT, else 9092; here: %(default)s)")
    p.add_argument("--controller-port", type=int, default=_env_int("DRNFLOW_KAFKA_CONTROLLER_PORT", 9093),
                   help="KRaft controller port (env DRNFLOW_KAFKA_CONTROLLER_PORT, else 9093; here: %(default)s)")
    p.add_argument("--rest-port", type=int, default=_env_int("DRNFLOW_FLINK_REST_PORT", 8081),
                   help="Flink REST/web UI port (env DRNFLOW_FLINK_REST_PORT, else 8081; here: %(default)s)")
    p.add_argument("--rpc-port", type=int, default=_env_int("DRNFLOW_FLINK_RPC_PORT", 6123),
                   help="Flink JobManager RPC port (env DRNFLOW_FLINK_RPC_PORT, else 6123; here: %(default)s)")


def _components(args: argparse.Namespace) -> tuple[Any, Any]:
    from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig
    from drnflow.stack.kafka import KafkaBroker, KafkaConfig

    state = (args.state_dir or state_dir()).resolve()
    try:
        broker = KafkaBroker(KafkaConfig(state_dir=state, port=args.kafka_port,
                                         controller_port=args.controller_port,
                                         secure=getattr(args, "secure", False)))
        cluster = FlinkCluster(FlinkClusterConfig(state_dir=state, rest_port=args.rest_port,
                                                  rpc_port=args.rpc_port,
                                                  prometheus=getattr(args, "prometheus", False),
                                                  prometheus_ports=getattr(args, "prometheus_ports",
                                                                           PROMETHEUS_PORTS),
                                                  taskmanagers=getattr(args, "taskmanagers", 1),
                                                  task_slots=getattr(args, "task_slots", 2)))
    except ValueError as e:
        raise CommandError(str(e)) from None
    return broker, cluster


def cmd_up(args: argparse.Namespace) -> int:
    from drnflow.stack.kafka import TopicSettings, create_topics
    from schemas.topics import TopicNames

    broker, cluster = _components(args)
    try:
        settings = TopicSettings(partitions=args.partitions, retention_ms=args.retention_ms)
        names = TopicNames(args.topic_prefix)
    except ValueError as e:
        raise CommandError(str(e)) from None
    try:
        current = broker.status()
        if current.running and current.secure != broker.config.secure:
            raise CommandError(f"the broker of {broker.home} already runs {'with' if current.secure else 'without'} "
                               f"--secure; `drnflow down` first to change that")
        t0 = time.monotonic()
        status = broker.start()
        took = time.monotonic() - t0
        print(f"kafka   {'already running' if current.running else f'ready in {took:.1f} s'}: "
              f"bootstrap {status.bootstrap} (pid {status.pid})")
        admin = broker.identity()
        created = create_topics(status.bootstrap, names, settings, identity=admin)
        print(f"topics  {len(names.all())} present ({len(created)} created) with prefix {names.prefix!r}")
        if admin is not None:
            from drnflow.stack.access import PRINCIPALS, apply_grants, credentials_dir, credentials_file

            granted = apply_grants(status.bootstrap, admin, names)
            print(f"secure  SASL/SCRAM-SHA-512 and {granted} ACLs for prefix {names.prefix!r}; credentials of "
                  f"{', '.join(PRINCIPALS)} in {credentials_dir(broker.home)}")
            print(f"        the job authenticates with: export DRNFLOW_KAFKA_CONFIG="
                  f"{credentials_file(broker.home, 'job')}")
        if args.cluster:
            already = cluster.status().running
            t0 = time.monotonic()
            healed = cluster.heal(args.taskmanagers) if already else None
            cstatus = cluster.start() if healed is None else cluster.status()
            took = time.monotonic() - t0
            print(f"flink   {'already running' if already else f'ready in {took:.1f} s'}: "
                  f"jobmanager {cstatus.jobmanager}, web UI {cstatus.web_ui} (pids {cstatus.pids})")
            if healed is not None and (healed.started or healed.orphans_ended):
                print(f"        {healed.alive} TaskManager(s) were running: started {healed.started} in "
                      f"{took:.1f} s; ended {healed.orphans_ended} Python worker(s) the dead ones left behind")
    except SetupError as e:
        raise CommandError(str(e)) from None
    print(f"state   {broker.config.state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    broker, cluster = _components(args)
    b = broker.status()
    c = cluster.status()
    if args.json:
        print(json.dumps({
            "state_dir": str(broker.config.state_dir),
            "kafka": {"running": b.running, "pid": b.pid, "bootstrap": b.bootstrap, "controller": b.controller,
                      "secure": b.secure},
            "flink": {"running": c.running, "pids": c.pids, "jobmanager": c.jobmanager, "web_ui": c.web_ui,
                      "taskmanagers": c.taskmanagers, "taskmanager_processes": len(cluster.taskmanager_pids()),
                      "taskmanagers_expected": cluster.expected_taskmanagers() if c.running else 0},
        }, indent=2))
    else:
        print(f"state   {broker.config.state_dir}")
        if b.running:
            print(f"kafka   running, pid {b.pid}, bootstrap {b.bootstrap}, controller {b.controller}"
                  f"{', SASL/SCRAM + ACLs' if b.secure else ''}")
        else:
            print("kafka   not running")
        if c.running:
            print(f"flink   running, pids {c.pids}, jobmanager {c.jobmanager}, web UI {c.web_ui}, "
                  f"{c.taskmanagers} taskmanager(s)")
            alive, expected = len(cluster.taskmanager_pids()), cluster.expected_taskmanagers()
            if alive < expected:
                print(f"        only {alive} of its {expected} TaskManager process(es) run: `drnflow up --cluster` "
                      "starts the missing ones")
        else:
            print("flink   not running")
    return 0 if b.running or c.running else 3


def cmd_down(args: argparse.Namespace) -> int:
    broker, cluster = _components(args)
    stopped_flink = cluster.stop()
    stopped_kafka = broker.stop()
    print(f"flink   {'stopped pids ' + str(stopped_flink) if stopped_flink else 'was not running'}")
    print(f"kafka   {'stopped pid ' + str(stopped_kafka) if stopped_kafka else 'was not running'}")
    if args.purge:
        import shutil

        # The jobs' checkpoints hold offsets of the topics purged with the broker: no use without them.
        checkpoints = broker.home.parent / "checkpoints"
        for path in (broker.home, cluster.home, checkpoints):
            if path.exists():
                shutil.rmtree(path)
        print(f"purged  {broker.home}, {cluster.home} and {checkpoints}")
        kept = [p for p in sorted(broker.home.parent.iterdir()) if p.is_dir()] if broker.home.parent.exists() else []
        if kept:
            print(f"kept    {', '.join(str(p) for p in kept)} (reports, savepoints, logs: delete them by hand)")
    return 0


def _duration_ms(text: str) -> int:
    if text.strip() in ("-1", "forever"):
        return -1
    return duration_ms_argument(text)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    up = sub.add_parser("up", help="start the local Kafka broker (and a Flink cluster with --cluster)",
                        description="Start a single-node Kafka broker (KRaft) from pinned Maven Central jars on "
                                    "loopback, create the topics of design.md §2, and with --cluster a Flink "
                                    "standalone session cluster. A second `up` starts only what is missing: "
                                    "TaskManagers that died (a standalone cluster does not restart them), "
                                    "after ending the Python workers they left behind.")
    add_stack_options(up)
    up.add_argument("--cluster", action="store_true", help="also start a Flink standalone session cluster")
    up.add_argument("--prometheus", action="store_true",
                    help="with --cluster: expose every Flink metric (win-rates included) to Prometheus on "
                         "localhost, the JobManager and each TaskManager on the first free port of "
                         "--prometheus-ports (deploy/flink/prometheus.yml scrapes 9249-9251)")
    up.add_argument("--prometheus-ports", default=os.environ.get("DRNFLOW_PROMETHEUS_PORTS") or PROMETHEUS_PORTS,
                    help="with --prometheus: the reporter's ports, a range or a comma-separated list (env "
                         "DRNFLOW_PROMETHEUS_PORTS; default %(default)s)")
    up.add_argument("--taskmanagers", type=int, default=_env_int("DRNFLOW_FLINK_TASKMANAGERS", 1),
                    help="with --cluster: TaskManager processes (env DRNFLOW_FLINK_TASKMANAGERS; default "
                         "%(default)s); with --task-slots 1 a job of --parallelism N runs on N of them")
    up.add_argument("--task-slots", type=int, default=_env_int("DRNFLOW_FLINK_TASK_SLOTS", 2),
                    help="with --cluster: slots per TaskManager (env DRNFLOW_FLINK_TASK_SLOTS; default %(default)s)")
    add_prefix_argument(up, help="prefix of every topic name to create (env DRNFLOW_TOPIC_PREFIX; default none)")
    up.add_argument("--secure", action="store_true",
                    help="SASL/SCRAM-SHA-512 authentication and ACLs: one principal each for the job, the major "
                         "update, the ranker, read-only tools and the admin, with credential files under "
                         "<state>/kafka/credentials (clients read one from DRNFLOW_KAFKA_CONFIG)")
    up.add_argument("--partitions", type=int, default=1, help="partitions per topic (default 1)")
    up.add_argument("--retention", dest="retention_ms", type=_duration_ms, default="forever",
                    help="topic retention as Flink writes durations, e.g. 7d, 12h, or 'forever' (default: "
                         "forever, since record timestamps are event times and replayed logs are old; "
                         "model-weights is always kept forever)")
    up.set_defaults(func=cmd_up)

    st = sub.add_parser("status", help="say what runs: pids, ports, bootstrap address",
                        description="Show the broker and cluster of this state dir. Exit 0 if something runs, "
                                    "3 if nothing does.")
    add_stack_options(st)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    down = sub.add_parser("down", help="stop exactly the processes `up` started",
                          description="Stop the Flink cluster and the Kafka broker of this state dir.")
    add_stack_options(down)
    down.add_argument("--purge", action="store_true", help="also delete their data and logs")
    down.set_defaults(func=cmd_down)
