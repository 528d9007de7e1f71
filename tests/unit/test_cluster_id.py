"""KRaft cluster ids never start with '-' (kafka-storage would read one as an option and not start)."""

from __future__ import annotations

import uuid
from unittest import mock

from drnflow.stack.kafka import new_cluster_id


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    dash_first = uuid.UUID(bytes=b"\xfb" + b"\x00" * 15)  # base64 of 0xfb... starts with '-'
    again = uuid.UUID(int=1)
    with mock.patch("drnflow.stack.kafka.uuid.uuid4", side_effect=[dash_first, again]):
        cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
