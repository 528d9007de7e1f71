"""deploy/grafana/drnflow.json queries metrics that exist: drnflow's own under the names Flink's Prometheus
reporter gives what operators/flink_metrics.py registers, and Flink's standard ones.

The names are derived by running WinRateMetrics against a recording metric group, so a renamed counter
or group fails here instead of leaving a dashboard panel empty. tests/integration/test_grafana_live_scrape.py
checks the same queries against a live scrape of the submitted job.
"""

from __future__ import annotations

import json
import re
from typing import Any

from operators.flink_metrics import WinRateMetrics
from operators.paths import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "drnflow.json"
#: The scope of an operator's metrics in Flink's default scope formats, as the reporter names it.
OPERATOR_SCOPE = "flink_taskmanager_job_task_operator"
#: Flink's own metrics the dashboard uses (Flink 2.2 metrics docs; the Kafka source's connector docs).
FLINK_STANDARD = {
    "flink_taskmanager_job_task_numRecordsInPerSecond",
    "flink_taskmanager_job_task_numRecordsOutPerSecond",
    "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
    "flink_taskmanager_job_task_busyTimeMsPerSecond",
    "flink_jobmanager_job_lastCheckpointDuration",
    "flink_jobmanager_job_numberOfFailedCheckpoints",
    "flink_jobmanager_job_numRestarts",
    "flink_jobmanager_job_uptime",
    f"{OPERATOR_SCOPE}_pendingRecords",
    f"{OPERATOR_SCOPE}_KafkaSourceReader_KafkaConsumer_records_lag_max",
    f"{OPERATOR_SCOPE}_KafkaSourceReader_KafkaConsumer_records_consumed_rate",
}
METRIC = re.compile(r"\bflink_[A-Za-z0-9_:]+")
#: Gauges the job's JVM operators register (`getMetricGroup().gauge("name", ...)`), read from their source.
JVM_OPERATORS = PROJECT_ROOT / "operators" / "jvm" / "src" / "main" / "java" / "drnflow" / "jvm"
GAUGE = re.compile(r'\.gauge\("([A-Za-z0-9_]+)"')


class _Counter:
    def inc(self, n: int = 1) -> None:
        pass

    def dec(self, n: int = 1) -> None:
        pass


class RecordingGroup:
    """A PyFlink MetricGroup that records the Prometheus name and labels of every counter registered on it.

    As in Flink's reporter: a key-value group (`add_group(key, value)`) puts its key into the name and
    its value into a label named after the key; a plain group puts its name into the name."""

    def __init__(self, names: list[str], labels: dict[str, str], seen: dict[str, set[str]]) -> None:
        self.names, self.labels, self.seen = names, labels, seen

    def add_group(self, name: str, extra: str | None = None) -> RecordingGroup:
        labels = self.labels if extra is None else {**self.labels, name: extra}
        return RecordingGroup([*self.names, name], labels, self.seen)

    def counter(self, name: str) -> _Counter:
        full = "_".join([OPERATOR_SCOPE, *self.names, name])
        self.seen[re.sub(r"[^A-Za-z0-9_:]", "_", full)] = set(self.labels)
        return _Counter()


def registered() -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    metrics = WinRateMetrics(RecordingGroup([], {}, seen))
    metrics.record({"model_id": "m1", "win_rate": 0.5, "explore_wins": 1, "current_wins": 1, "impressions": 2,
                    "model_version": 1, "window_end": 60_000, "decision": "ACCEPT"})
    return seen


def jvm_gauges() -> set[str]:
    """The Prometheus names of the gauges drnflow's JVM operators register."""
    return {f"{OPERATOR_SCOPE}_{name}" for java in JVM_OPERATORS.glob("*.java")
            for name in GAUGE.findall(java.read_text())}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def used_metrics() -> set[str]:
    return {m for p in panels() for t in p["targets"] for m in METRIC.findall(t["expr"])}


def test_every_panel_queries_a_metric() -> None:
    assert panels()
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert all(METRIC.search(t["expr"]) for t in panel["targets"]), panel["title"]


def test_drnflow_metrics_are_the_registered_ones() -> None:
    names = registered()
    assert "flink_taskmanager_job_task_operator_model_win_rate_permille" in names  # the documented example
    assert all(labels == {"model"} for labels in names.values())
    ours = {m for m in used_metrics() if m.startswith(f"{OPERATOR_SCOPE}_model_")}
    assert ours == set(names)  # every registered metric shown, nothing shown that is not registered


def test_the_jvm_operators_gauges_are_all_shown() -> None:
    gauges = jvm_gauges()
    assert f"{OPERATOR_SCOPE}_sourceSkewMs" in gauges and f"{OPERATOR_SCOPE}_maxSourceSkewMs" in gauges
    assert gauges <= used_metrics()


def test_the_rest_are_flinks_standard_metrics() -> None:
    others = used_metrics() - set(registered()) - jvm_gauges()
    assert others <= FLINK_STANDARD
    for needed in ("numRecordsIn", "numRecordsOut", "lastCheckpointDuration", "records_lag_max",
                   "backPressuredTimeMsPerSecond"):
        assert any(needed in m for m in others), needed


def test_model_filter_uses_the_model_label() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert "label_values(" in variables["model"]["definition"] and ", model)" in variables["model"]["definition"]
    for panel in panels():
        for target in panel["targets"]:
            if f"{OPERATOR_SCOPE}_model_" in target["expr"]:
                assert 'model=~"$model"' in target["expr"], panel["title"]
