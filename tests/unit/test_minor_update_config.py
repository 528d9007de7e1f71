"""The minor-update job's typed config and command line (pure: no broker, no Flink)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from jobs.minor_update import jvm_settings
from jobs.minor_update_config import FaultInjection, MinorUpdateConfig, add_arguments, from_args
from operators.dbgd_step import parse_ranges
from operators.model_weights_log import WeightsLog


def parse(*argv: str) -> MinorUpdateConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(list(argv)))


def test_flags_take_flink_durations_and_fill_the_config() -> None:
    cfg = parse("--bounded", "--bootstrap", "127.0.0.1:1234", "--topic-prefix", "x.", "--window", "30 min",
                "--attribution-window", "10s", "--alpha", "0.2", "--eta", "0.3", "--seed", "9",
                "--trigger-every", "none", "--trigger-every-minor", "4")
    assert cfg.bounded and cfg.bootstrap == "127.0.0.1:1234" and cfg.topics.clicks == "x.clicks"
    assert (cfg.window_ms, cfg.attribution_window_ms, cfg.click_horizon_ms) == (1_800_000, 10_000, 86_400_000)
    assert parse("--attribution-window", "2 days").click_horizon_ms == 2 * 86_400_000  # never below it
    assert parse("--attribution-window", "10 s", "--click-horizon", "1 min").click_horizon_ms == 60_000
    assert (cfg.dbgd_config().alpha, cfg.dbgd_config().eta, cfg.seed) == (0.2, 0.3, 9)
    assert cfg.trigger_config().every_ms is None and cfg.trigger_config().every_minor == 4
    # max_staleness covers one attribution window of windows unless set
    assert cfg.dbgd_config().max_staleness == 2
    assert parse().window_ms == 60_000 and parse().attribution_window_ms == 1_800_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "0 s"}, "window must be > 0"),
        ({"window": "10 parsecs"}, "MinorUpdateConfig.window"),
        ({"attribution_window": "10 s", "click_horizon": "5 s"}, "click_horizon"),
        ({"transaction_timeout": "1 h"}, "15 min"),
        ({"checkpoint_interval": "0 ms"}, "checkpoint_interval"),
        ({"topic_prefix": "bad prefix"}, "topic prefix"),
        ({"eta": -1.0}, "eta"),
        ({"parallelism": 0}, "parallelism"),
        ({"trigger_every": None, "trigger_every_minor": None}, "nothing ever fires"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MinorUpdateConfig(**kwargs)  # type: ignore[arg-type]


def test_fault_injection_needs_a_marker() -> None:
    with pytest.raises(ValueError, match="marker"):
        FaultInjection(fail_after_impressions=3)


def test_jvm_settings_carry_topics_durations_and_start_offsets() -> None:
    cfg = MinorUpdateConfig(topic_prefix="p.", window="10 s", attribution_window="5 s", bounded=True)
    settings = jvm_settings(cfg, WeightsLog(end_offsets={1: 7, 0: 3}))
    assert settings["topic.impressions"] == "p.impressions" and settings["bounded"] == "true"
    assert (settings["window.ms"], settings["attribution-window.ms"], settings["click-horizon.ms"]) == (
        "10000", "5000", "86400000")
    assert settings["model-weights.start-offsets"] == "0:3,1:7"
    assert '"name": "Impression"' in settings["schema.impression"]


def test_sources_are_aligned_within_a_drift_that_one_flag_sets() -> None:
    assert jvm_settings(parse(), WeightsLog(end_offsets={}))["max-source-drift.ms"] == "300000"  # the default
    assert jvm_settings(parse("--max-source-drift", "1 min"), WeightsLog(end_offsets={}))["max-source-drift.ms"] == (
        "60000")
    off = parse("--max-source-drift", "0 ms")
    assert off.max_source_drift_ms == 0 and "sources not aligned" in off.describe()
    assert "sources aligned within 5 min" in parse().describe()
    assert "sources not aligned" in parse("--bounded").describe()  # bounded jobs never align (design.md §4)
    with pytest.raises(ValueError, match="max_source_drift"):
        MinorUpdateConfig(max_source_drift="soon")


def test_offset_ranges_from_the_jvm_are_parsed() -> None:
    assert parse_ranges("0:3:9;2:1:2", "t") == [("t", 0, 3, 9), ("t", 2, 1, 2)]
    assert parse_ranges("", "t") == []


def test_weights_log_keeps_the_latest_major_and_highest_version() -> None:
    log = WeightsLog()
    for version, kind in ((1, "MAJOR"), (2, "MINOR"), (5, "MAJOR"), (3, "MAJOR"), (7, "MINOR")):
        log.add({"model_id": "m", "version": version, "kind": kind})
    assert log.latest_major["m"]["version"] == 5 and log.max_version["m"] == 7


def test_acceptance_tests_reach_the_learner() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = from_args(parser.parse_args(["--confidence", "0.9", "--min-decided", "20"]))
    dbgd = cfg.dbgd_config()
    assert (dbgd.confidence, dbgd.min_decided) == (0.9, 20)
    assert MinorUpdateConfig().dbgd_config().confidence is None  # off by default, as in DRN
    with pytest.raises(ValueError, match="confidence"):
        MinorUpdateConfig(confidence=1.5)


def test_the_job_takes_its_broker_and_prefix_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: DRNFLOW_KAFKA_PORT was ignored by the job (and by simulate and major-update)."""
    monkeypatch.delenv("DRNFLOW_BOOTSTRAP", raising=False)
    monkeypatch.setenv("DRNFLOW_KAFKA_PORT", "19092")
    monkeypatch.setenv("DRNFLOW_TOPIC_PREFIX", "team.")
    assert (MinorUpdateConfig().bootstrap, MinorUpdateConfig().topic_prefix) == ("127.0.0.1:19092", "team.")
    monkeypatch.setenv("DRNFLOW_BOOTSTRAP", "10.0.0.1:9000")
    assert MinorUpdateConfig().bootstrap == "10.0.0.1:9000"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = from_args(parser.parse_args(["--topic-prefix", "old.", "--bootstrap", "127.0.0.1:1"]))
    assert (cfg.bootstrap, cfg.topic_prefix) == ("127.0.0.1:1", "old."), "the old spelling still parses"
    cfg = from_args(parser.parse_args(["--prefix", "new."]))
    assert (cfg.bootstrap, cfg.topic_prefix) == ("10.0.0.1:9000", "new.")
    assert "--topic-prefix" not in parser.format_help(), "old spellings are hidden"


def test_checkpoints_go_to_a_local_folder_or_a_durable_uri(tmp_path: Path) -> None:
    from operators.flinkenv import checkpoint_uri

    local = tmp_path / "ck" / "a"
    assert checkpoint_uri(local) == local.resolve().as_uri() and local.is_dir(), "a local folder is created"
    assert checkpoint_uri(f"file://{tmp_path}/ck/b") == (tmp_path / "ck" / "b").as_uri()
    assert checkpoint_uri("s3://bucket/drnflow/ck") == "s3://bucket/drnflow/ck", "a URI is Flink's to resolve"
    cfg = MinorUpdateConfig(checkpoint_dir="hdfs://nn:8020/drnflow")
    assert cfg.checkpoint_path() == "hdfs://nn:8020/drnflow"
    assert MinorUpdateConfig(checkpoint_dir=str(local)).checkpoint_path() == local.resolve()
