"""The Prometheus reporter's ports of drnflow's session cluster: a range or list that FlinkClusterConfig checks
and the config.yaml the cluster writes carries, instead of deploy/flink/metrics-prometheus.yaml's 9249-9259."""

from __future__ import annotations

from pathlib import Path

import pytest

from drnflow.stack.flink import PROMETHEUS_PORTS, FlinkCluster, FlinkClusterConfig, prometheus_ports
from operators.paths import PROJECT_ROOT


def test_port_specs_expand_to_their_ports() -> None:
    assert prometheus_ports("9249-9252") == [9249, 9250, 9251, 9252]
    assert prometheus_ports("9301,9302") == [9301, 9302]
    assert prometheus_ports("9301-9302, 9400") == [9301, 9302, 9400]
    assert prometheus_ports(PROMETHEUS_PORTS) == list(range(9249, 9260))


@pytest.mark.parametrize("spec", ["", "abc", "9249-", "9252-9249", "0", "70000", "9249;9250"])
def test_a_bad_port_spec_is_refused(spec: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prometheus ports"):
        FlinkClusterConfig(state_dir=tmp_path, prometheus_ports=spec)


def test_the_written_config_has_the_configured_ports(tmp_path: Path) -> None:
    default = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path, prometheus=True))._config_yaml()
    assert "metrics.reporter.prom.port: 9249-9259\n" in default
    assert PROMETHEUS_PORTS in (PROJECT_ROOT / "deploy" / "flink" / "metrics-prometheus.yaml").read_text()
    text = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path, prometheus=True,
                                           prometheus_ports="41001,41002"))._config_yaml()
    ports = [ln for ln in text.splitlines() if ln.startswith("metrics.reporter.prom.port:")]
    assert ports == ["metrics.reporter.prom.port: 41001,41002"]
    assert "metrics.reporter.prom.factory.class: org.apache.flink.metrics.prometheus.PrometheusReporterFactory" in text
    assert "metrics.reporter" not in FlinkCluster(FlinkClusterConfig(state_dir=tmp_path))._config_yaml()
