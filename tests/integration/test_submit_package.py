"""Issue 16, items 1-2: the minor-update job runs on a cluster that has nothing of this checkout, from the
`drnflow package` folder alone.

The "remote" cluster is a standalone session cluster started from a copy of the Flink distribution in a
scratch folder, with only Flink's own jars in its lib/ (no connector jars, no drnflow-jvm.jar), no
`python.executable` in its configuration, and JobManager and TaskManager started with a scrubbed
environment: another HOME and working directory, a PATH of the system's folders only, no PYTHONPATH, no
VIRTUAL_ENV. What the job needs comes with it: code (-pyfs), jars (pipeline.jars, from the package's
cache), the Python environment (-pyarch, -pyexec). What it writes is the plain-Python reference's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drnflow.stack import process
from drnflow.stack.flink import _wheel_java_opts, flink_home, rest_get
from drnflow.stack.kafka import create_topics
from drnflow.tools.package import ENV_NAME, PackageConfig, build
from jobs.minor_update_config import MinorUpdateConfig
from models.reference import ReferenceConfig, run_reference
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    ATTRIBUTION_MS,
    OOO_MS,
    T0,
    WINDOW_MS,
    hand_written_stream,
    initial_major,
    publish,
    read_committed,
)
from tests.integration.test_submit import _cancel_all, cli, flush_impression, job_flags, produce, row_key, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@dataclass(frozen=True)
class ScrubbedCluster:
    root: Path
    jobmanager: str
    mark: str
    env: dict[str, str]


def _scrubbed_env(root: Path, conf: Path) -> dict[str, str]:
    """What a daemon of another machine's cluster would see: nothing of this checkout or its venv."""
    java_home = Path(os.path.realpath(shutil.which("java") or "/usr/bin/java")).parent.parent
    return {
        "HOME": str(root / "home"),
        "PATH": f"{java_home / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "JAVA_HOME": str(java_home),
        "LANG": "C.UTF-8",
        "FLINK_CONF_DIR": str(conf),
        "FLINK_LOG_DIR": str(root / "log"),
        "FLINK_PID_DIR": str(root / "pid"),
        "FLINK_IDENT_STRING": "remote",
    }


def _copy_distribution(dest: Path) -> None:
    """bin/, conf/ logging, plugins/ and lib/ of the wheel's Flink, copied (hard-linked where the file system
    allows), with flink-python moved into lib/ as Flink's Python docs ask of a cluster."""
    home = flink_home()
    for sub in ("bin", "plugins"):
        shutil.copytree(home / sub, dest / sub, symlinks=False)
    (dest / "lib").mkdir(parents=True)
    for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python-*.jar")]:
        try:
            os.link(jar.resolve(), dest / "lib" / jar.name)
        except OSError:
            shutil.copy2(jar, dest / "lib" / jar.name)


@pytest.fixture(scope="module")
def scrubbed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrubbedCluster]:
    root = tmp_path_factory.mktemp("remote-cluster")
    dist, conf = root / "flink", root / "flink" / "conf"
    _copy_distribution(dist)
    for d in (conf, root / "home", root / "log", root / "pid", root / "work", root / "checkpoints"):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties"):
        if (flink_home() / "conf" / name).exists():
            shutil.copy(flink_home() / "conf" / name, conf / name)
    rest_port, rpc_port = process.free_port(), process.free_port()
    mark = f"-Ddrnflow.test.remote={uuid.uuid4().hex}"
    settings: dict[str, Any] = {
        "env.java.opts.all": f"{_wheel_java_opts()} {mark}".strip(),
        "jobmanager.rpc.address": "localhost", "jobmanager.rpc.port": rpc_port, "jobmanager.bind-host": "localhost",
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.bind-host": "localhost", "taskmanager.host": "localhost",
        "taskmanager.memory.process.size": "2048m", "taskmanager.numberOfTaskSlots": 1,
        "rest.address": "localhost", "rest.bind-address": "localhost", "rest.port": rest_port,
        "execution.checkpointing.dir": (root / "checkpoints").as_uri(),
        "classloader.parent-first-patterns.additional": "pemja.",
    }
    (conf / "config.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))
    env = _scrubbed_env(root, conf)
    cluster = ScrubbedCluster(root, f"localhost:{rest_port}", mark, env)
    try:
        for script in ("jobmanager.sh", "taskmanager.sh"):
            proc = subprocess.run(["bash", str(dist / "bin" / script), "start"], env=env, cwd=root / "work",
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        deadline = time.monotonic() + 120
        while (rest_get(f"http://{cluster.jobmanager}/overview") or {}).get("taskmanagers", 0) != 1:
            assert time.monotonic() < deadline, f"the scrubbed cluster did not start; see {root / 'log'}"
            time.sleep(0.5)
        yield cluster
    finally:
        _cancel_all(cluster.jobmanager)
        process.terminate(process.find_marked(mark), 30.0)


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "drnflow-job"
    build(PackageConfig(out=out), say=lambda line: print(line, file=sys.stderr))
    return out


def _daemon_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_the_packaged_job_runs_on_a_cluster_without_this_checkout(
        scrubbed_cluster: ScrubbedCluster, package_dir: Path, kafka_bootstrap: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    checkout = str(Path(__file__).resolve().parents[2])
    pids = process.find_marked(scrubbed_cluster.mark)
    assert len(pids) == 2
    for pid in pids:  # the daemons really are scrubbed
        env = _daemon_environment(pid)
        assert checkout not in json.dumps(env) and sys.prefix not in json.dumps(env), env
        assert os.readlink(f"/proc/{pid}/cwd") == str(scrubbed_cluster.root / "work")
    manifest = json.loads((package_dir / "manifest.json").read_text())
    assert not [f for f in manifest["files"] if "torch" in f], "torch is left out by default"

    names = TopicNames(f"pkg{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    job_cfg = MinorUpdateConfig(seed=11)
    # Every model has a first version: without torch the job cannot build a seeded one (its rows would be STALE).
    majors = [initial_major(job_cfg, "m1", 1, T0 - 1), initial_major(job_cfg, "m2", 0, T0 - 1),
              initial_major(job_cfg, "flush", 0, T0 - 1)]
    publish(kafka_bootstrap, names.model_weights,
            [(m["model_id"].encode(), serde.encode("ModelWeights", m)) for m in majors])
    stream = hand_written_stream()
    cfg = MinorUpdateConfig(topic_prefix=names.prefix, window=WINDOW_MS, attribution_window=ATTRIBUTION_MS,
                            out_of_orderness=OOO_MS, seed=3, alpha=0.1)
    ref = run_reference(stream.impressions, stream.clicks, majors[:2], ReferenceConfig(
        window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
        impressions_topic=names.impressions, clicks_topic=names.clicks, click_horizon_ms=30_000))

    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", scrubbed_cluster.jobmanager,
                         "--package", str(package_dir), *job_flags(kafka_bootstrap, names.prefix, tmp_path),
                         "--click-horizon", "30 s")
    assert code == 0, err
    assert f"with package {package_dir.resolve()}" in out
    job_id = out.split("job id")[1].split()[0]
    produce(kafka_bootstrap, names, [*stream.impressions, flush_impression()], stream.clicks)

    def rows() -> list[dict[str, Any]]:
        got = [w for w in (serde.decode("WinRate", r.value) for r in read_committed(kafka_bootstrap, names.win_rates))
               if w["model_id"] != "flush"]
        return got if len(got) >= len(ref.win_rates) else []

    def story() -> str:
        from drnflow.tools.flink_jobs import job_exceptions

        return f"failures: {job_exceptions(scrubbed_cluster.jobmanager, job_id)[:3]}"

    got = wait_until("the reference's rows", rows, timeout_s=240, explain=story)
    assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
    weights = [serde.decode("ModelWeights", r.value) for r in read_committed(kafka_bootstrap, names.model_weights)]
    def by_version(ws: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(ws, key=lambda w: (w["model_id"], w["version"]))

    assert by_version([w for w in weights if w["kind"] == "MINOR" and w["model_id"] != "flush"]) == \
        by_version(ref.model_weights)
    assert any(w["kind"] == "MINOR" for w in ref.model_weights)
    dead = sorted(serde.decode("DeadLetter", r.value)["reason"] for r in read_committed(kafka_bootstrap,
                                                                                         names.dead_letters))
    assert dead == sorted(d["reason"] for d in ref.dead_letters)
    # The TaskManager ran the job's Python from the unpacked archive, not from anything of this machine's.
    tm_log = "".join(p.read_text(errors="replace") for p in (scrubbed_cluster.root / "log").glob("*taskexecutor*.log"))
    assert ENV_NAME in tm_log, "the TaskManager's log names the shipped environment"
    code, _, err = cli(capsys, "cancel", job_id, "--jobmanager", scrubbed_cluster.jobmanager)
    assert code == 0, err
