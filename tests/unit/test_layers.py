"""The layers contract of `make lint` (pyproject [tool.importlinter]) really refuses an upward import.

Runs lint-imports on a copy of the source tree: as it is (kept), then with one function-local
import from models/ up to drnflow/ (broken, and named in the report).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "models", "operators", "jobs", "drnflow")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> None:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.avsc"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed in this venv")
def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    (tmp_path / "models" / "upward.py").write_text(
        "def sneaky():\n    import drnflow.cli  # function-local imports count too\n    return drnflow.cli\n"
    )
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout
    assert "models.upward -> drnflow.cli" in broken.stdout
