"""Helpers that find and stop our processes and pick ports."""

from __future__ import annotations

import socket

from drnflow.stack import process


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = [process.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))


def test_port_in_use_sees_a_listening_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert process.port_in_use("127.0.0.1", s.getsockname()[1])


def test_marker_names_service_and_state(tmp_path: object) -> None:
    assert process.marker("kafka", tmp_path) == f"-Ddrnflow.service=kafka@{tmp_path}"  # type: ignore[arg-type]
