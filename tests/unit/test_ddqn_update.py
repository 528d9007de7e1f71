"""run_update without Kafka (models/major/update.py): outcomes that publish nothing say why; the CLI's
time parsing and config errors."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from drnflow.commands.major_update import parse_time_ms
from models.drn import DrnConfig, DrnQNetwork
from models.major.ddqn import DdqnConfig
from models.major.update import (
    CORRUPT,
    EMPTY,
    MISMATCH,
    PUBLISH,
    BaseModel,
    CorruptRecord,
    LogRange,
    MajorUpdateConfig,
    report_markdown,
    run_update,
)
from models.weights import flatten, layout_of
from tests.unit.test_ddqn import DA, DS, K

torch.set_num_threads(1)


def tiny_log(n: int = 60) -> LogRange:
    imps, clicks = [], []
    for i in range(n):
        rid = f"r{i}"
        imps.append({"request_id": rid, "user_id": f"u{i % 3}", "event_time": i * 1000, "model_id": "m",
                     "state_features": [0.1 * (i % 5)] * DS,
                     "slots": [{"item_id": f"i{j}", "position": j, "features": [float(j == i % K)] * DA}
                               for j in range(K)]})
        clicks.append({"request_id": rid, "item_id": f"i{i % K}", "event_time": i * 1000 + 5})
    return LogRange("m", 0, n * 1000, imps, clicks)


CFG = MajorUpdateConfig(ddqn=DdqnConfig(steps=20, batch_size=16, device="cpu"), run_baselines=False)


def base(ds: int = DS) -> BaseModel:
    net = DrnQNetwork(DrnConfig(ds, DA, (8,), (8,)))
    return BaseModel(7, flatten(net), layout_of(net))


def test_a_clean_range_gives_a_candidate_and_a_report() -> None:
    out = run_update(tiny_log(), base(), CFG)
    assert out.status in (PUBLISH, "REJECTED") and out.report["gate"]["metric"] == "ndcg_ips"
    assert out.report["input"]["train_impressions"] == 48 and out.report["input"]["test_impressions"] == 12
    assert "Offline evaluation" in report_markdown(out.report)


def test_corrupt_records_above_the_allowed_share_publish_nothing() -> None:
    data = tiny_log()
    data.corrupt = [CorruptRecord("imps", 0, i, "MALFORMED: x") for i in range(3)]
    out = run_update(data, base(), CFG)
    assert out.status == CORRUPT and not out.publish and out.network is None
    assert "3 of 123 records" in out.reason and "imps[0]@0" in out.reason
    ok = run_update(data, base(), MajorUpdateConfig(ddqn=CFG.ddqn, run_baselines=False, max_corrupt_fraction=0.1))
    assert ok.status != CORRUPT and ok.report["input"]["corrupt_records"] == 3


def test_empty_range_and_base_of_other_dims_publish_nothing() -> None:
    empty = run_update(LogRange("m", 0, 10, [], []), base(), CFG)
    assert empty.status == EMPTY and "no usable impression" in empty.reason
    mismatch = run_update(tiny_log(), base(ds=DS + 2), CFG)
    assert mismatch.status == MISMATCH and "dims" in mismatch.reason


def test_time_parsing_and_config_errors() -> None:
    assert parse_time_ms("1704067200000") == 1704067200000
    assert parse_time_ms("2024-01-01T00:00:00Z") == 1704067200000
    assert parse_time_ms("2024-01-01T01:00:00") == 1704067200000 + 3_600_000
    with pytest.raises(argparse.ArgumentTypeError, match="ISO"):
        parse_time_ms("yesterday")
    with pytest.raises(ValueError, match="gate_metric"):
        MajorUpdateConfig(gate_metric="auc")
    with pytest.raises(ValueError, match="holdout_fraction"):
        MajorUpdateConfig(holdout_fraction=1.0)


def test_the_paired_gate_refuses_only_a_candidate_shown_worse() -> None:
    from models.major.offline_eval import OfflineMetrics
    from models.major.update import _gate

    def metrics(v: float) -> OfflineMetrics:
        return OfflineMetrics("x", 400, 0.0, 0.0, 0.0, v)

    rng = np.random.default_rng(0)
    cfg = MajorUpdateConfig()
    noisy = rng.normal(-0.015, 0.3, size=400)  # point estimate worse by more than the margin, but noise
    g = _gate(metrics(0.65), metrics(0.635), cfg, noisy)
    assert g["passed"] and g["upper_bound"] > -0.01 and "not shown worse" in g["reason"]
    worse = rng.normal(-0.05, 0.1, size=400)
    g = _gate(metrics(0.65), metrics(0.60), cfg, worse)
    assert not g["passed"] and g["upper_bound"] < -0.01 and "with that confidence" in g["reason"]
    point = _gate(metrics(0.65), metrics(0.635), MajorUpdateConfig(gate_confidence=0.0))
    assert not point["passed"] and "upper_bound" not in point
    with pytest.raises(ValueError, match="gate_confidence"):
        MajorUpdateConfig(gate_confidence=1.0)


def test_the_candidate_keeps_the_base_versions_explore_parameters() -> None:
    from dataclasses import replace

    from models.perturbation import ExploreParams

    b = base()
    arch = ExploreParams(0.2).written_into(DrnConfig.from_layout(b.layout).to_json())
    lenient = replace(CFG, gate_margin=1.0)
    out = run_update(tiny_log(), replace(b, architecture=arch), lenient)
    assert out.publish and ExploreParams.read_from(out.architecture) == ExploreParams(0.2)
    assert ExploreParams.read_from(run_update(tiny_log(), b, lenient).architecture) is None


def test_probation_flags_reach_the_candidates_architecture_and_a_first_network_has_none() -> None:
    from dataclasses import replace

    from drnflow.cli import make_parser
    from drnflow.commands.major_update import build_config
    from drnflow.errors import CommandError
    from models.probation import ProbationParams

    parser = make_parser()
    args = parser.parse_args(["major-update", "--from", "0", "--probation-windows", "3",
                              "--probation-min-win-rate", "0.45"])
    assert build_config(args).probation == ProbationParams(3, 0.45, 0.95)
    assert build_config(parser.parse_args(["major-update", "--from", "0"])).probation is None
    with pytest.raises(CommandError, match="probation windows"):
        build_config(parser.parse_args(["major-update", "--from", "0", "--probation-windows", "0"]))
    cfg = replace(CFG, gate_margin=1.0, probation=ProbationParams(3, 0.45))
    out = run_update(tiny_log(), base(), cfg)
    assert out.publish and ProbationParams.read_from(out.architecture) == ProbationParams(3, 0.45)
    assert ProbationParams.read_from(run_update(tiny_log(), None, cfg).architecture) is None


def test_a_refused_candidate_goes_on_probation_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from drnflow.cli import make_parser
    from drnflow.commands.major_update import build_config
    from drnflow.errors import CommandError
    from models.major import update
    from models.probation import ProbationParams

    def refuse(*_: object) -> dict[str, object]:
        return {"metric": "ndcg_ips", "passed": False, "reason": "shown worse than the base"}

    monkeypatch.setattr(update, "_gate", refuse)
    on_probation = replace(CFG, probation=ProbationParams(3))
    assert run_update(tiny_log(), base(), on_probation).status == "REJECTED"
    out = run_update(tiny_log(), base(), replace(on_probation, refused_on_probation=True))
    assert out.publish and out.report["gate"]["overruled_by_probation"] is True
    assert ProbationParams.read_from(out.architecture) == ProbationParams(3)
    assert "on probation against v7" in out.reason and "shown worse than the base" in out.reason
    with pytest.raises(ValueError, match="refused_on_probation needs probation"):
        replace(CFG, refused_on_probation=True)
    parser = make_parser()
    args = parser.parse_args(["major-update", "--from", "0", "--probation-windows", "2", "--refused-on-probation"])
    assert build_config(args).refused_on_probation is True
    with pytest.raises(CommandError, match="needs probation"):
        build_config(parser.parse_args(["major-update", "--from", "0", "--refused-on-probation"]))
