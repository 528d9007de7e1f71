"""`drnflow submit | jobs | stop`: run drnflow's Flink jobs on a session cluster, list them, stop them with a
savepoint (and resubmit from it with --from-savepoint)."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drnflow.errors import CommandError

JOB_NAMES = ("minor-update", "window-count")


def default_jobmanager() -> str:
    return os.environ.get("DRNFLOW_JOBMANAGER") or f"localhost:{os.environ.get('DRNFLOW_FLINK_REST_PORT') or 8081}"


class _RaisingParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one CommandError sentence instead of usage + exit 2."""

    def error(self, message: str) -> Any:
        raise CommandError(f"bad job flags: {message}", code=2)


def _submit_options(job: str = "JOB") -> argparse.ArgumentParser:
    p = _RaisingParser(prog=f"drnflow submit {job}", add_help=False,
                       usage=f"drnflow submit {job} [submit options] [job flags]")
    o = p.add_argument_group("submit options")
    o.add_argument("--jobmanager", default=default_jobmanager(),
                   help="HOST:PORT of the cluster's REST API (env DRNFLOW_JOBMANAGER; default %(default)s)")
    o.add_argument("--parallelism", type=int, default=None,
                   help="the job's parallelism, checked against the cluster's free slots first (default 1)")
    o.add_argument("--from-savepoint", default=None, metavar="PATH", help="resume from this savepoint")
    o.add_argument("--allow-non-restored-state", action="store_true",
                   help="resume even when the savepoint holds state no operator of the job takes")
    o.add_argument("--package", "--remote", dest="package", default=os.environ.get("DRNFLOW_PACKAGE"), metavar="DIR",
                   help="ship this `drnflow package` folder (code, jars, Python environment) for a cluster on "
                   "another machine, instead of using this checkout's venv (env DRNFLOW_PACKAGE)")
    o.add_argument("--settle", type=float, default=5.0, metavar="SECONDS",
                   help="how long every task must run without a failure before submit reports success "
                   "(default %(default)s; 0 = do not wait)")
    return p


def _job_parser(job: str) -> argparse.ArgumentParser:
    """The job's own flags, parsed as the job parses them."""
    from jobs.minor_update_config import add_arguments as minor_update_arguments
    from jobs.window_count import add_arguments as window_count_arguments

    parser = _RaisingParser(prog=f"drnflow submit {job}", add_help=False)
    (minor_update_arguments if job == "minor-update" else window_count_arguments)(parser)
    return parser


def _print_help(job: str) -> None:
    print(_submit_options(job).format_help().rstrip())
    job_help = _job_parser(job).format_help()
    print(f"\njob flags of {job} (passed on to the job):" + job_help[job_help.find("\n\n") + 1:].rstrip())


@dataclass(frozen=True)
class JobFlags:
    """A job's flags as its own parser and config read them: what to pass on, and the broker and topics
    they name."""

    args: list[str]
    bootstrap: str
    prefix: str
    topics: list[str]
    #: The job's Python needs torch on the cluster (PDGD's autograd step).
    needs_torch: bool = False


def parse_job_flags(job: str, job_args: list[str], parallelism: int | None) -> JobFlags:
    """The job's flags checked by the job's own parser and config (one clear sentence when wrong), asking
    nothing of any server."""
    from jobs.minor_update_config import from_args
    from jobs.window_count import config_from_args
    from schemas.topics import TopicNames

    try:
        if job == "minor-update":
            args = job_args + ([] if parallelism is None else ["--parallelism", str(parallelism)])
            cfg = from_args(_job_parser(job).parse_args(args))
            names = cfg.topics
            return JobFlags(args, cfg.bootstrap, cfg.topic_prefix,
                            [names.impressions, names.clicks, names.model_weights, names.win_rates],
                            needs_torch=cfg.learner == "pdgd")
        cfg_wc = config_from_args(_job_parser(job).parse_args(job_args))
    except ValueError as e:
        raise CommandError(f"bad job flags: {e}", code=2) from None
    names = TopicNames(cfg_wc.topic_prefix)
    return JobFlags(job_args, cfg_wc.bootstrap, cfg_wc.topic_prefix, [names.impressions, names.clicks])


def check_job_flags(flags: JobFlags) -> list[str]:
    """Check the broker and topics the flags name; returns the flags to pass on, with the broker and prefix
    checked here spelled out, so the job runs with them whatever the cluster's environment says."""
    from operators.kafka_io import require_broker, require_topics

    require_broker(flags.bootstrap)
    require_topics(flags.bootstrap, flags.topics)
    return [*flags.args, f"--bootstrap={flags.bootstrap}", f"--prefix={flags.prefix}"]


def check_package(root: Path, flags: JobFlags) -> Any:
    """The `drnflow package` folder at `root`, checked complete and able to run the job the flags describe."""
    from drnflow.tools.package import load

    package = load(root)
    if flags.needs_torch and not package.manifest.get("with_torch"):
        raise CommandError(f"--learner pdgd steps with torch, which package {package.root} leaves out; "
                           "build one with `drnflow package --with-torch`")
    return package


def cmd_submit(args: argparse.Namespace) -> int:
    from drnflow.tools.flink_jobs import Submission, require_cluster, savepoint_uri, submit

    if any(a in ("-h", "--help") for a in args.rest):
        _print_help(args.job)
        return 0
    opts, job_args = _submit_options(args.job).parse_known_args(args.rest)
    # The flags first, before anything is asked of the cluster or the broker: a wrong flag is said as such,
    # not as a cluster without free slots.
    flags = parse_job_flags(args.job, job_args, opts.parallelism)
    package = None if opts.package is None else check_package(Path(opts.package), flags)
    overview = require_cluster(opts.jobmanager)
    wanted = opts.parallelism or 1
    free = int(overview.get("slots-available", wanted))
    if wanted > free:
        # Flink would accept the job and leave it waiting for slots until it fails minutes later.
        raise CommandError(f"the job needs {wanted} task slots and the cluster at {opts.jobmanager} has {free} free "
                           f"(of {overview.get('slots-total', '?')}); lower --parallelism or stop a job")
    if opts.from_savepoint is not None:
        local = opts.from_savepoint.removeprefix("file:")
        if "://" not in opts.from_savepoint.replace("file://", ""):
            local = local.removeprefix("//")
            if not os.path.exists(local):
                raise CommandError(f"savepoint {opts.from_savepoint} does not exist")
            if os.path.isdir(local) and not os.path.exists(os.path.join(local, "_metadata")):
                raise CommandError(f"{opts.from_savepoint} is not a savepoint (no _metadata file in it)")
    job_args = check_job_flags(flags)
    try:
        sub = Submission(job=args.job, jobmanager=opts.jobmanager, job_args=tuple(job_args),
                         parallelism=opts.parallelism,
                         from_savepoint=None if opts.from_savepoint is None else savepoint_uri(opts.from_savepoint),
                         allow_non_restored_state=opts.allow_non_restored_state, package=package)
    except ValueError as e:
        raise CommandError(str(e)) from None
    t0 = time.monotonic()
    if opts.settle < 0:
        raise CommandError(f"--settle must be >= 0 seconds, got {opts.settle:g}")
    result = submit(sub, settle_s=opts.settle)
    origin = f" from savepoint {sub.from_savepoint}" if sub.from_savepoint else ""
    origin += f" with package {package.root}" if package is not None else ""
    print(f"submitted {args.job}{origin} in {time.monotonic() - t0:.1f} s: job {result.job_id} is {result.state}")
    print(f"job id  {result.job_id}")
    print(f"web UI  {result.web_ui}")
    return 0


def _age(ms: int) -> str:
    s = ms // 1000
    return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def cmd_jobs(args: argparse.Namespace) -> int:
    from drnflow.tools.flink_jobs import job_exceptions, list_jobs

    jobs = list_jobs(args.jobmanager)
    if not args.all:
        jobs = [j for j in jobs if j.state not in ("FINISHED", "CANCELED")]
    causes = {j.job_id: job_exceptions(args.jobmanager, j.job_id) for j in jobs}
    if args.json:
        print(json.dumps([{**j.__dict__, "failures": causes[j.job_id]} for j in jobs], indent=2))
        return 0
    if not jobs:
        print(f"no {'' if args.all else 'running, restarting or failed '}jobs on {args.jobmanager}")
        return 0
    print(f"{'job id':<32}  {'state':<11} {'age':>8} {'failures':>8}  name")
    for j in jobs:
        failures = causes[j.job_id]
        print(f"{j.job_id:<32}  {j.state:<11} {_age(j.duration_ms):>8} {len(failures):>8}  {j.name}")
        if failures:
            print(f"{'':<34}last failure: {failures[0]}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from drnflow.tools.flink_jobs import cancel, require_cluster, resolve_job, wait_for_state

    require_cluster(args.jobmanager)
    job = resolve_job(args.jobmanager, args.job)
    if job.state in ("FINISHED", "CANCELED", "FAILED"):
        raise CommandError(f"job {job.job_id} ({job.name}) has already ended ({job.state})")
    cancel(args.jobmanager, job.job_id)
    state = wait_for_state(args.jobmanager, job.job_id, ("CANCELED",), timeout_s=60.0)
    print(f"canceled {job.name} ({job.job_id}): {state} (no savepoint; `drnflow stop` takes one)")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from drnflow.tools.flink_jobs import require_cluster, resolve_job, savepoint_uri, stop_with_savepoint

    require_cluster(args.jobmanager)
    job = resolve_job(args.jobmanager, args.job)
    if job.state != "RUNNING":
        raise CommandError(f"job {job.job_id} ({job.name}) is {job.state}, not RUNNING; nothing to stop")
    if args.savepoint is not None and "://" not in args.savepoint:
        os.makedirs(args.savepoint, exist_ok=True)
    target = None if args.savepoint is None else savepoint_uri(args.savepoint)
    t0 = time.monotonic()
    location = stop_with_savepoint(args.jobmanager, job.job_id, target)
    print(f"stopped {job.name} ({job.job_id}) in {time.monotonic() - t0:.1f} s")
    print(f"savepoint  {location}")
    kind = job.name.removeprefix("drnflow-")
    print(f"resume     drnflow submit {kind if kind in JOB_NAMES else '<job>'} --from-savepoint {location} "
          "<the same job flags>")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "submit", help="submit a drnflow job to a Flink session cluster",
        description="Package the project (drnflow, jobs, operators, models, schemas) and submit JOB to a Flink "
                    "session cluster with the real `flink run`, then print the job id and web UI address. "
                    "Options after JOB: --jobmanager HOST:PORT (env DRNFLOW_JOBMANAGER; default "
                    "localhost:$DRNFLOW_FLINK_REST_PORT or 8081), --parallelism N, --from-savepoint PATH, "
                    "--allow-non-restored-state, --package DIR (a `drnflow package` folder, for a cluster on another "
                    "machine), --settle SECONDS (how long every task must run without a "
                    "failure before submit reports success; default 5, 0 = do not wait); "
                    "every other flag goes to the job (e.g. --bootstrap, "
                    "--prefix, --window for minor-update). `drnflow submit JOB --help` lists both.",
        usage="drnflow submit {minor-update,window-count} [--jobmanager HOST:PORT] [--parallelism N] "
              "[--from-savepoint PATH] [--package DIR] [--settle SECONDS] [job flags]")
    p.add_argument("job", choices=JOB_NAMES, help="which job")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_submit)

    j = sub.add_parser("jobs", help="list the jobs of a Flink session cluster",
                       description="List the cluster's running, restarting and failed jobs with the number of "
                                   "failures and the root cause of the last one (--all: also finished and "
                                   "canceled jobs).")
    j.add_argument("--jobmanager", default=default_jobmanager(), help="HOST:PORT of the REST API")
    j.add_argument("--all", action="store_true", help="also jobs that have ended")
    j.add_argument("--json", action="store_true", help="machine-readable output")
    j.set_defaults(func=cmd_jobs)

    c = sub.add_parser("cancel", help="cancel a job (no savepoint)",
                       description="Cancel a job that is running or restarting, without a savepoint.")
    c.add_argument("job", help="job id, unique id prefix, or the name of one running job")
    c.add_argument("--jobmanager", default=default_jobmanager(), help="HOST:PORT of the REST API")
    c.set_defaults(func=cmd_cancel)

    s = sub.add_parser("stop", help="stop a job with a savepoint",
                       description="Stop a running job with a savepoint (without draining: open windows are kept "
                                   "in the savepoint). Resubmit with `drnflow submit JOB --from-savepoint PATH`.")
    s.add_argument("job", help="job id, unique id prefix, or the name of one running job")
    s.add_argument("--savepoint", default=None, metavar="DIR",
                   help="folder (or URI) for the savepoint (default: the cluster's savepoint dir)")
    s.add_argument("--jobmanager", default=default_jobmanager(), help="HOST:PORT of the REST API")
    s.set_defaults(func=cmd_stop)
