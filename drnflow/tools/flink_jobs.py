"""Submitting drnflow's PyFlink jobs to a Flink session cluster and listing/stopping them.

Submission goes through the real `flink run` of the apache-flink wheel (a Python job's client side, which
builds the job graph, needs it). By default the project's packages travel as one zip (`-pyfs`) and the
cluster's Python finds the third-party dependencies in this environment's site-packages
(`python.pythonpath`), so a cluster on this host needs nothing installed; with a `drnflow package`
(drnflow/tools/package.py) the code, the jars and a packed Python environment travel with the job, for a
cluster on another machine. Listing and stop-with-savepoint use the REST API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drnflow.errors import CommandError
from drnflow.tools.package import ENV_NAME, PACKAGE_PYTHON_MODE, Package
from operators.flinkenv import CLUSTER_PYTHON_ENV
from operators.paths import PROJECT_ROOT, cache_dir, state_dir

#: `drnflow submit NAME` -> the job's module (run with `flink run -pym`).
JOBS: dict[str, str] = {"minor-update": "jobs.minor_update", "window-count": "jobs.window_count"}
#: What the cluster's Python needs of this checkout; the job's client side also finds the pinned poms and
#: the JVM operators' sources by path (their hashes name the cached jars).
PACKAGES = ("drnflow", "jobs", "operators", "models", "schemas")
BUILD_FILES = ("deploy/maven", "operators/jvm/pom.xml", "operators/jvm/src")
_SUBMITTED = re.compile(r"Job has been submitted with JobID ([0-9a-f]{32})")


# ------------------------------------------------------------------------------------------------ REST
def rest(jobmanager: str, path: str, method: str = "GET", body: dict[str, Any] | None = None,
         timeout_s: float = 10.0) -> Any:
    """One REST call; CommandError with one sentence when the cluster does not answer or refuses."""
    url = f"http://{jobmanager}{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        try:
            errors = json.loads(detail).get("errors", [])
            detail = errors[0].splitlines()[0] if errors else detail
        except (ValueError, AttributeError):
            pass
        raise CommandError(f"the Flink cluster at {jobmanager} refused {method} {path}: "
                           f"{detail.strip()[:300]}") from None
    except (urllib.error.URLError, OSError):
        raise CommandError(f"no Flink cluster answers at http://{jobmanager}; start one with `drnflow up --cluster` "
                           "or pass --jobmanager HOST:PORT") from None
    return json.loads(text) if text.strip() else {}


def require_cluster(jobmanager: str) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", jobmanager):
        raise CommandError(f"--jobmanager {jobmanager!r} is not HOST:PORT")
    overview: dict[str, Any] = rest(jobmanager, "/overview", timeout_s=5.0)
    if int(overview.get("taskmanagers", 0)) < 1:
        raise CommandError(f"the Flink cluster at {jobmanager} has no TaskManager to run a job")
    return overview


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    start_time: int
    duration_ms: int

    @classmethod
    def of(cls, j: dict[str, Any]) -> JobInfo:
        return cls(str(j["jid"]), str(j["name"]), str(j["state"]), int(j["start-time"]), int(j["duration"]))


def list_jobs(jobmanager: str) -> list[JobInfo]:
    """All jobs the cluster knows, newest first."""
    data = rest(jobmanager, "/jobs/overview")
    return sorted((JobInfo.of(j) for j in data.get("jobs", [])), key=lambda j: -j.start_time)


def job_state(jobmanager: str, job_id: str) -> str:
    return str(rest(jobmanager, f"/jobs/{job_id}").get("state", "UNKNOWN"))


def resolve_job(jobmanager: str, spec: str) -> JobInfo:
    """A job by id, unique id prefix, or the name of exactly one running job."""
    jobs = list_jobs(jobmanager)
    exact = [j for j in jobs if j.job_id == spec]
    if exact:
        return exact[0]
    by_prefix = [j for j in jobs if len(spec) >= 4 and j.job_id.startswith(spec)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    by_name = [j for j in jobs if j.name == spec and j.state == "RUNNING"]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_prefix) > 1 or len(by_name) > 1:
        raise CommandError(f"{spec!r} names {len(by_prefix) or len(by_name)} jobs; give the full job id "
                           "(see `drnflow jobs`)")
    raise CommandError(f"no job {spec!r} on the cluster at {jobmanager} (see `drnflow jobs`)")


def wait_for_state(jobmanager: str, job_id: str, wanted: Sequence[str], timeout_s: float = 120.0) -> str:
    """Poll until the job reaches one of `wanted` (or a terminal state); returns the state."""
    terminal = {"FAILED", "CANCELED", "FINISHED"}
    deadline = time.monotonic() + timeout_s
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = job_state(jobmanager, job_id)
        if state in wanted or state in terminal:
            return state
        time.sleep(0.5)
    return state


def root_cause(stacktrace: str) -> str:
    """The most telling line of a Java stack trace: its last `Caused by:` (the root), else its first line."""
    lines = [ln.strip() for ln in stacktrace.strip().splitlines() if ln.strip()]
    causes = [ln.removeprefix("Caused by: ") for ln in lines if ln.startswith("Caused by: ")]
    return (causes[-1] if causes else lines[0] if lines else "")[:400]


def job_exceptions(jobmanager: str, job_id: str) -> list[str]:
    """Root causes of the job's failures, newest first (each one restarted or failed the job)."""
    try:
        data = rest(jobmanager, f"/jobs/{job_id}/exceptions?maxExceptions=20")
    except CommandError:
        return []
    history = data.get("exceptionHistory", {}).get("entries", [])
    causes = [root_cause(str(e.get("stacktrace", ""))) for e in history]
    if not causes and data.get("root-exception"):
        causes = [root_cause(str(data["root-exception"]))]
    return [c for c in causes if c]


def job_exception(jobmanager: str, job_id: str) -> str:
    """The root cause of the job's newest failure, if any."""
    causes = job_exceptions(jobmanager, job_id)
    return causes[0] if causes else ""


def wait_until_settled(jobmanager: str, job_id: str, settle_s: float, timeout_s: float = 180.0) -> str:
    """Return once every task of the job has run for `settle_s` without a failure; CommandError with the
    root cause when the job fails or restarts first. A job RUNNING on the JobManager may still fail
    seconds later, when its tasks start (a missing module, a broker that refuses): this is that wait."""
    deadline = time.monotonic() + timeout_s
    running_since: float | None = None
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        detail = rest(jobmanager, f"/jobs/{job_id}")
        state = str(detail.get("state", "UNKNOWN"))
        causes = job_exceptions(jobmanager, job_id)
        if causes or state in ("FAILED", "FAILING", "RESTARTING", "CANCELED", "CANCELLING"):
            what = {"RESTARTING": "is restarting", "FAILING": "is failing", "FAILED": "failed",
                    "CANCELED": "was canceled", "CANCELLING": "is being canceled"}.get(state, "failed and restarted")
            stays = "" if state in ("FAILED", "CANCELED") else f" (it stays on the cluster: `drnflow cancel {job_id}`)"
            raise CommandError(f"job {job_id} {what} right after submission: "
                               f"{causes[0] if causes else 'see the cluster logs'}{stays}")
        if state == "FINISHED":
            return state
        tasks = [str(v.get("status")) for v in detail.get("vertices", [])]
        if state == "RUNNING" and tasks and all(t == "RUNNING" for t in tasks):
            running_since = running_since if running_since is not None else time.monotonic()
            if time.monotonic() - running_since >= settle_s:
                return state
        else:
            running_since = None
        time.sleep(0.5)
    raise CommandError(f"job {job_id} did not have all its tasks running within {timeout_s:.0f} s (it is {state}); "
                       "see the cluster's web UI")


def cancel(jobmanager: str, job_id: str) -> None:
    rest(jobmanager, f"/jobs/{job_id}?mode=cancel", method="PATCH")


def stop_with_savepoint(jobmanager: str, job_id: str, directory: str | None, timeout_s: float = 300.0) -> str:
    """Stop the job with a savepoint (no drain: event-time windows stay open and resume); returns its path."""
    body: dict[str, Any] = {"drain": False, "formatType": "CANONICAL"}
    if directory is not None:
        body["targetDirectory"] = directory
    trigger = rest(jobmanager, f"/jobs/{job_id}/stop", method="POST", body=body)
    request_id = trigger.get("request-id")
    if not request_id:
        raise CommandError(f"the cluster did not accept stop-with-savepoint of {job_id}: {trigger}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = rest(jobmanager, f"/jobs/{job_id}/savepoints/{request_id}")
        if status.get("status", {}).get("id") == "COMPLETED":
            op = status.get("operation", {})
            if "location" in op:
                return str(op["location"])
            cause = op.get("failure-cause", {}).get("stack-trace", "") or str(op)
            first = next((ln for ln in cause.splitlines() if "Exception" in ln), cause.splitlines()[0] if cause else "")
            raise CommandError(f"the savepoint of job {job_id} failed: {first.strip()[:300]}")
        time.sleep(0.5)
    raise CommandError(f"the savepoint of job {job_id} did not complete within {timeout_s:.0f} s")


# ------------------------------------------------------------------------------------------------ submit
def package_project(dest: Path) -> Path:
    """A zip of the project's packages (sources and .avsc files, no caches) for `flink run -pyfs`."""
    path = dest / "drnflow-job.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PACKAGES:
            root = PROJECT_ROOT / package
            for f in sorted(root.rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts and f.suffix in (".py", ".avsc", ".typed", ".json"):
                    zf.write(f, f.relative_to(PROJECT_ROOT).as_posix())
        for name in BUILD_FILES:
            root = PROJECT_ROOT / name
            for f in sorted([root] if root.is_file() else root.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(PROJECT_ROOT).as_posix())
    return path


def client_conf_dir(dest: Path, cluster_python: str = sys.executable, mode: str | None = None) -> Path:
    """A private FLINK_CONF_DIR for the `flink` client: this interpreter for the client's Python,
    `cluster_python` for the cluster's, the Python execution `mode` (default: DRNFLOW_PYTHON_MODE's), the
    wheel's logging."""
    from drnflow.stack.flink import _wheel_java_opts, flink_home
    from operators.flinkenv import python_execution_mode

    conf = dest / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name in ("log4j-cli.properties", "log4j.properties", "logback.xml"):
        if (flink_home() / "conf" / name).exists():
            shutil.copy(flink_home() / "conf" / name, conf / name)
    (conf / "config.yaml").write_text(
        # The --add-opens Flink's client needs on Java 17 (the wheel's own conf has them).
        f"env.java.opts.all: {json.dumps(_wheel_java_opts())}\n"
        f"python.client.executable: {json.dumps(sys.executable)}\n"
        f"python.executable: {json.dumps(cluster_python)}\n"
        # Thread mode runs every job's Python in the TaskManager's one interpreter, which keeps the modules of
        # the first job it ran; process mode (submit's default, SUBMIT_PYTHON_MODE) gives each job its own.
        f"python.execution-mode: {mode or python_execution_mode()}\n"
    )
    return conf


@dataclass(frozen=True)
class Submission:
    job: str
    jobmanager: str
    job_args: tuple[str, ...] = ()
    parallelism: int | None = None
    from_savepoint: str | None = None
    allow_non_restored_state: bool = False
    #: A `drnflow package` folder: ship its code, jars and Python environment instead of this checkout's.
    package: Package | None = None

    def __post_init__(self) -> None:
        if self.job not in JOBS:
            raise ValueError(f"unknown job {self.job!r}; one of: {', '.join(JOBS)}")
        if self.parallelism is not None and not 1 <= self.parallelism <= 64:
            raise ValueError(f"--parallelism must be in 1..64, got {self.parallelism}")


def flink_run_command(sub: Submission, package: Path) -> list[str]:
    from drnflow.stack.flink import flink_cli

    cmd = ["bash", str(flink_cli()), "run", "-m", sub.jobmanager, "-d"]
    if sub.parallelism is not None:
        cmd += ["-p", str(sub.parallelism)]
    if sub.from_savepoint is not None:
        cmd += ["-s", sub.from_savepoint]
        if sub.allow_non_restored_state:
            cmd += ["-n"]
    if sub.package is not None:
        # Everything the cluster runs comes with the job: the code, the environment archive (unpacked in
        # each task's working directory under ENV_NAME) and its interpreter, relative to it.
        pkg = sub.package
        cmd += ["-pym", JOBS[sub.job], "-pyfs", str(pkg.job_zip), "-pyarch", f"{pkg.python_env}#{ENV_NAME}",
                "-pyexec", pkg.python_exec, "-pyclientexec", sys.executable, "--", *sub.job_args]
        return cmd
    site_packages = os.pathsep.join(site.getsitepackages())
    cmd += ["-pym", JOBS[sub.job], "-pyfs", str(package), "-pyexec", sys.executable, "-pyclientexec", sys.executable,
            f"-Dpython.pythonpath={site_packages}", "--", *sub.job_args]
    return cmd


#: PyFlink's execution mode of a submitted job unless DRNFLOW_PYTHON_MODE says otherwise: Flink's own default.
#: In thread mode a session cluster's TaskManager embeds one Python interpreter for good, and every later
#: job on it runs the modules of the first drnflow job it ran: a resubmission after an upgrade would run
#: the old code. Python sees one row per window here, so its worker processes cost little.
SUBMIT_PYTHON_MODE = "process"


@dataclass(frozen=True)
class Submitted:
    job_id: str
    state: str
    web_ui: str


def submit(sub: Submission, timeout_s: float = 300.0, settle_s: float = 5.0) -> Submitted:
    """Run `flink run -d` and return once every task of the job has run `settle_s` without a failure."""
    require_cluster(sub.jobmanager)
    work = Path(tempfile.mkdtemp(prefix="drnflow-submit-"))
    try:
        package = package_project(work) if sub.package is None else sub.package.job_zip
        env = dict(os.environ)
        cluster_python = sys.executable if sub.package is None else sub.package.python_exec
        if sub.package is not None:
            # Thread mode points PYTHONHOME at the unpacked archive, which would have to hold a whole Python
            # distribution; a packed venv runs as the workers' interpreter, a process per task.
            env["DRNFLOW_PYTHON_MODE"] = PACKAGE_PYTHON_MODE
        else:
            env.setdefault("DRNFLOW_PYTHON_MODE", SUBMIT_PYTHON_MODE)
        env["FLINK_CONF_DIR"] = str(client_conf_dir(work, cluster_python, env.get("DRNFLOW_PYTHON_MODE")))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # The client runs the job module from the zip; jars come from this checkout's cache (or the
        # package's), state stays where this checkout keeps it.
        env.pop("PYTHONPATH", None)
        env["DRNFLOW_CACHE"] = str(cache_dir() if sub.package is None else sub.package.cache)
        env["DRNFLOW_STATE"] = str(state_dir())
        if sub.package is not None:
            env[CLUSTER_PYTHON_ENV] = cluster_python
        job_id, output = _run_client(flink_run_command(sub, package), env, work, timeout_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log = state_dir() / "submit" / f"{sub.job}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    if job_id is None:
        raise CommandError(f"`flink run` did not submit {sub.job}: {_client_error(output)} (full output: {log})")
    state = wait_for_state(sub.jobmanager, job_id, ("RUNNING",), timeout_s=120.0)
    if state in ("FAILED", "CANCELED"):
        raise CommandError(f"job {job_id} {state.lower()} right after submission: "
                           f"{job_exception(sub.jobmanager, job_id) or 'see the cluster logs'}")
    if settle_s > 0:
        state = wait_until_settled(sub.jobmanager, job_id, settle_s)
    return Submitted(job_id, state, f"http://{sub.jobmanager}/#/job/running/{job_id}/overview")


def _run_client(cmd: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> tuple[str | None, str]:
    """Start `flink run`; return (job id, output) as soon as it names the job. A Python program whose
    `execute()` blocks (e.g. TableResult.wait()) keeps the client alive after a detached submission, so
    the client is stopped once the id is known and it has not exited by itself."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    found: list[str] = []
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = _SUBMITTED.search(line)
            if m and not found:
                found.append(m.group(1))
                done.set()
        done.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    done.wait(timeout_s)
    if found:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    reader.join(timeout=5)
    if not found and proc.returncode not in (0, None) and not lines:
        lines.append(f"exit code {proc.returncode}")
    return (found[0] if found else None), "".join(lines)


def _client_error(output: str) -> str:
    """The most telling line of a failed `flink run`: the Python exception of a traceback, else a Java
    'Caused by', else the last line."""
    lines = [ln.rstrip() for ln in output.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            after = [ln for ln in lines[i + 1:] if not ln.startswith((" ", "\t"))]
            causes = [ln.strip() for ln in lines if ln.startswith("Caused by: ")]
            if after and after[0].startswith("py4j") and causes:
                return causes[-1][:400]  # the Java side's root cause says more than Py4JJavaError
            if after:
                return after[0][:400]
    for pattern in (r"^Caused by: ", r"error", r"Exception"):
        hits = [ln.strip() for ln in lines if re.search(pattern, ln)]
        if hits:
            return hits[-1][:400]
    return lines[-1][:400] if lines else "no output"


def savepoint_uri(path: str) -> str:
    """A savepoint location as Flink wants it: URIs pass through, local paths become file:// URIs."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", path):
        return path
    return Path(path).resolve().as_uri()

