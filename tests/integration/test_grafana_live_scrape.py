"""deploy/grafana/drnflow.json against a live scrape (issue 16): a standalone session cluster with the
Prometheus reporter (`drnflow up --cluster --prometheus`) runs the submitted minor-update job until its
windows are decided; then every reporter endpoint (JobManager and TaskManager) is scraped, and every
metric a panel or a variable of the dashboard queries must be on it, with the labels the query selects
and groups by. tests/unit/test_grafana_dashboard.py checks the same names offline; this is the check that
they are the names Flink 2.2.1 really exports."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drnflow.stack import process
from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig, prometheus_ports
from tests.integration.minor_update_data import hand_written_stream
from tests.integration.test_submit import (
    _cancel_all,
    cli,
    flush_impression,
    job_flags,
    produce,
    start_topics,
    wait_until,
    win_rates_of,
)
from tests.unit.test_grafana_dashboard import METRIC, dashboard, panels

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about 55 s with the broker and cluster start

#: name{labels} value [timestamp]: one sample line of Prometheus' text format.
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
#: label matchers {job_name=~"$job"} and groupings `by (model)` of a PromQL expression.
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
BY = re.compile(r"\bby\s*\(([^)]*)\)")
#: the label of a variable's label_values(metric, label).
LABEL_VALUES = re.compile(r"label_values\([^,]*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


@pytest.fixture(scope="module")
def prometheus_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    """A session cluster with the reporter on two free ports (one each for the JobManager and the
    TaskManager), so another cluster's reporter on 9249-9259 can neither block nor answer for it."""
    state = tmp_path_factory.mktemp("flink-prometheus")
    ports = f"{process.free_port()},{process.free_port()}"
    c = FlinkCluster(FlinkClusterConfig(state_dir=state, rest_port=process.free_port(), rpc_port=process.free_port(),
                                        prometheus=True, prometheus_ports=ports))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=10) as resp:
            text: str = resp.read().decode(errors="replace")
            return text
    except OSError:
        return ""


class Sample(dict[str, str]):
    """The labels of one sample, and its value."""

    value: float


def samples(text: str) -> dict[str, list[Sample]]:
    """metric name -> its samples."""
    out: dict[str, list[Sample]] = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            sample = Sample(LABEL.findall(m.group(2) or ""))
            sample.value = float(m.group(3))
            out.setdefault(m.group(1), []).append(sample)
    return out


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every variable that queries a metric."""
    found = [(f"panel {p['title']!r}", t["expr"]) for p in panels() for t in p["targets"]]
    for v in dashboard()["templating"]["list"]:
        if METRIC.search(v.get("definition", "")):
            found.append((f"variable ${v['name']}", v["definition"]))
    return found


def problems(scraped: dict[str, list[Sample]], job_name: str) -> list[str]:
    """One sentence per metric a query uses that the scrape lacks, or has without the labels the query needs."""
    out = []
    for where, expr in queries():
        labels = {*MATCHER.findall(expr), *LABEL_VALUES.findall(expr),
                  *(x.strip() for g in BY.findall(expr) for x in g.split(",") if x.strip())}
        for name in dict.fromkeys(METRIC.findall(expr)):
            if name not in scraped:
                out.append(f"{where}: metric {name} is not on the live scrape")
                continue
            ours = [s for s in scraped[name] if s.get("job_name", job_name) == job_name]
            if not ours:
                out.append(f"{where}: metric {name} has no sample of job_name={job_name!r}")
            elif not any(labels <= set(s) for s in ours):
                out.append(f"{where}: metric {name} lacks label(s) {sorted(labels - set(ours[0]))} "
                           f"(it has {sorted(ours[0])})")
    return out


def test_every_dashboard_metric_is_on_the_live_scrape(
        prometheus_cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cluster = prometheus_cluster
    jm = cluster.config.jobmanager
    ports = prometheus_ports(cluster.config.prometheus_ports)
    prefix = f"graf{uuid.uuid4().hex[:8]}."
    names, _ = start_topics(kafka_bootstrap, prefix)
    stream = hand_written_stream()
    try:
        code, _, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm,
                             *job_flags(kafka_bootstrap, prefix, tmp_path))
        assert code == 0, err
        # The reporter writes label values as it writes names: every character but [A-Za-z0-9_:] as "_".
        job_name = re.sub(r"[^A-Za-z0-9_:]", "_", f"sub-{prefix}")
        produce(kafka_bootstrap, names, [*stream.impressions, flush_impression()], stream.clicks)
        decided = wait_until("a decided window of m1 and of m2", lambda: {
            r["model_id"] for r in win_rates_of(kafka_bootstrap, names)} >= {"m1", "m2"})
        assert decided

        # The reporter reads the JVM's metrics at each scrape: scrape until every query has its metric
        # (Flink registers some a little after the job starts, e.g. on the first checkpoint).
        deadline = time.monotonic() + 60
        while True:
            texts = {port: scrape(port) for port in ports}
            scraped: dict[str, list[Sample]] = {}
            for text in texts.values():
                for name, found in samples(text).items():
                    scraped.setdefault(name, []).extend(found)
            missing = problems(scraped, job_name)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(2)
        for port, text in texts.items():
            (tmp_path / f"scrape-{port}.txt").write_text(text)
        answering = {port: text for port, text in texts.items() if text}
        assert any("flink_jobmanager_" in t for t in answering.values()), f"no JobManager endpoint on {ports}"
        assert any("flink_taskmanager_" in t for t in answering.values()), f"no TaskManager endpoint on {ports}"
        assert not missing, "\n".join([*missing, f"(the scrapes are in {tmp_path})"])

        # The decision counters count the decided windows: a panel of them shows the decisions, not zeros.
        decisions = [s for s in scraped if s.startswith("flink_taskmanager_job_task_operator_model_decisions_")]
        assert decisions
        total = sum(x.value for name in decisions for x in scraped[name]
                    if x.get("model") == "m1" and x.get("job_name") == job_name)
        assert total >= 1, "no decision of m1 counted on the scrape"
    finally:
        _cancel_all(jm)

