"""`drnflow ge` end to end on the tiny preset: each step writes its report; a missing step is one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from drnflow.cli import main

torch.set_num_threads(1)


def test_ge_steps_write_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    assert main(["ge", "train-evaluator", "--preset", "tiny", "--logs", "600", "--epochs", "1",
                 "--dir", d]) == 0
    assert main(["ge", "train-generator", "--dir", d, "--steps", "3", "--batch-size", "16",
                 "--min-distinct-shops", "4"]) == 0
    assert main(["ge", "evaluate", "--dir", d, "--requests", "5", "--k", "2", "--beam-width", "2"]) == 0
    ev = json.loads((tmp_path / "train-evaluator.json").read_text())
    assert 0.0 <= ev["held_out_auc"] <= 1.0 and ev["held_out_requests"] == 120
    gen = json.loads((tmp_path / "train-generator.json").read_text())
    assert set(gen["held_out_greedy_after"]) == {"reward", "evaluator_score", "true_clicks"}
    rows = json.loads((tmp_path / "evaluate.json").read_text())["results"]
    assert [r["name"] for r in rows] == ["logged", "pointer-greedy", "pointer-best-of-k", "greedy-by-score",
                                         "beam-search", "mmr", "dpp", "multi-queue", "best-of-generators"]
    assert all(r["requests"] == 5 for r in rows)
    out = capsys.readouterr().out
    assert "true clicks" in out and "best-of-generators" in out


def test_evaluate_without_checkpoints_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ge", "evaluate", "--dir", str(tmp_path)]) == 1
    assert "run `drnflow ge train-evaluator` first" in capsys.readouterr().err
