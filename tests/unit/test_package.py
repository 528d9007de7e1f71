"""`drnflow package` / `submit --package` without a cluster: pins, the package check, the `flink run` command,
and a DBGD job's Python without torch (the packed environment leaves it out)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from drnflow.commands.submit import JobFlags, check_package
from drnflow.errors import CommandError
from drnflow.tools.flink_jobs import Submission, flink_run_command
from drnflow.tools.package import ENV_NAME, JOB_ZIP, MANIFEST, PYTHON_ENV_ZIP, Package, load, requirements
from operators.paths import PROJECT_ROOT


def _fake_package(root: Path, with_torch: bool = False) -> Path:
    root.mkdir(parents=True)
    (root / JOB_ZIP).write_bytes(b"zip")
    (root / PYTHON_ENV_ZIP).write_bytes(b"tar.gz")
    files = {name: {"bytes": (root / name).stat().st_size, "sha256": "-"} for name in (JOB_ZIP, PYTHON_ENV_ZIP)}
    (root / MANIFEST).write_text(json.dumps({"files": files, "with_torch": with_torch}))
    return root


def test_requirements_pin_what_is_installed_here_and_leave_torch_out() -> None:
    pins = requirements(with_torch=False)
    assert f"apache-flink=={metadata.version('apache-flink')}" in pins
    assert not any(p.startswith("torch") for p in pins)
    assert f"torch=={metadata.version('torch')}" in requirements(with_torch=True)


def test_load_refuses_a_folder_that_is_not_a_complete_package(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a drnflow package"):
        load(tmp_path)
    root = _fake_package(tmp_path / "p")
    assert load(root).root == root.resolve()
    (root / PYTHON_ENV_ZIP).write_bytes(b"truncated")
    with pytest.raises(CommandError, match=f"{PYTHON_ENV_ZIP} is missing or has another size"):
        load(root)


def test_pdgd_needs_a_package_with_torch(tmp_path: Path) -> None:
    pdgd = JobFlags([], "localhost:9092", "p.", [], needs_torch=True)
    with pytest.raises(CommandError, match="--with-torch"):
        check_package(_fake_package(tmp_path / "plain"), pdgd)
    assert check_package(_fake_package(tmp_path / "torch", with_torch=True), pdgd).manifest["with_torch"]


def test_flink_run_ships_the_package_and_names_no_path_of_this_machine_for_the_cluster(tmp_path: Path) -> None:
    pkg = Package(_fake_package(tmp_path / "p").resolve())
    cmd = flink_run_command(Submission(job="minor-update", jobmanager="jm:8081", job_args=("--x", "1"),
                                       package=pkg), tmp_path / "unused.zip")
    assert cmd[cmd.index("-pyfs") + 1] == str(pkg.job_zip)
    assert cmd[cmd.index("-pyarch") + 1] == f"{pkg.python_env}#{ENV_NAME}"
    assert cmd[cmd.index("-pyexec") + 1] == f"{ENV_NAME}/bin/python"
    assert not [a for a in cmd if a.startswith("-Dpython.pythonpath")]
    assert cmd[-3:] == ["--", "--x", "1"]


def test_a_dbgd_job_imports_and_steps_without_torch() -> None:
    """torch made unimportable: the job's modules load, a DBGD learner decides a window, and a model with no
    version gets no seeded network (None, logged) instead of an exception that would restart the job."""
    code = """
import sys
sys.modules["torch"] = None
import jobs.minor_update
from operators.dbgd_step import seeded_initial_record
from models.pdgd_learner import window_learner
from models.dbgd import DbgdConfig
learner = window_learner("m1", DbgdConfig(), None)
print(type(learner).__name__, seeded_initial_record("m1", 4, 4, 0, created_at=0))
assert "models.drn" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["DbgdLearner", "None"]
    assert "cannot be built without torch" in proc.stderr
