"""ModelWeights layout: flatten/unflatten, bytes, record build/parse and its validation errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.drn import DrnConfig, DrnQNetwork
from models.weights import (
    ParamSpec,
    WeightsError,
    checksum,
    flatten,
    from_bytes,
    layout_of,
    layout_size,
    make_model_weights_record,
    parse_model_weights_record,
    to_bytes,
    unflatten_into,
)
from schemas import serde

torch.set_num_threads(1)
CONFIG = DrnConfig(state_dim=5, action_dim=7, state_hidden=(8, 6), action_hidden=(9,), seed=3)


def _record(flat: np.ndarray, layout: list[ParamSpec], **kw: object) -> dict:
    args = dict(
        model_id="drn",
        version=4,
        parent_version=3,
        kind="MINOR",
        flat=flat,
        layout=layout,
        created_at=1_700_000_000_000,
        explore_seeds=[11, 12],
        window_start=1_000,
        window_end=2_000,
        architecture=CONFIG.to_json(),
    )
    args.update(kw)
    return make_model_weights_record(**args)  # type: ignore[arg-type]


def test_layout_is_named_parameters_order_and_matches_config() -> None:
    net = DrnQNetwork(CONFIG)
    layout = layout_of(net)
    assert [p.name for p in layout] == [n for n, _ in net.named_parameters()]
    assert layout == CONFIG.layout()
    assert layout[0] == ParamSpec("state_layers.0.weight", (8, 5))
    assert layout[-1] == ParamSpec("advantage_head.bias", (1,))
    assert flatten(net).size == layout_size(layout) == sum(p.numel() for p in net.parameters())


def test_flatten_is_row_major_concatenation() -> None:
    net = DrnQNetwork(CONFIG)
    flat = flatten(net)
    w0 = dict(net.named_parameters())["state_layers.0.weight"].detach().numpy()
    assert np.array_equal(flat[: w0.size], w0.reshape(-1))
    assert flat[: w0.size][1] == w0[0, 1]  # row-major: second value is row 0, column 1


def test_unflatten_round_trip_gives_identical_parameters() -> None:
    src, dst = DrnQNetwork(CONFIG), DrnQNetwork(DrnConfig(**{**CONFIG.__dict__, "seed": 99}))
    assert not np.array_equal(flatten(src), flatten(dst))
    unflatten_into(dst, flatten(src), layout_of(src))
    assert np.array_equal(flatten(src), flatten(dst))


def test_unflatten_refuses_wrong_layout_or_size() -> None:
    net = DrnQNetwork(CONFIG)
    other = DrnConfig(5, 7, (8, 6), (10,)).layout()
    with pytest.raises(WeightsError, match="layout does not match"):
        unflatten_into(net, np.zeros(layout_size(other), np.float32), other)
    with pytest.raises(WeightsError, match="layout needs"):
        unflatten_into(net, np.zeros(3, np.float32), layout_of(net))


def test_bytes_are_float32_little_endian() -> None:
    flat = np.array([1.0, -2.5, 3.25], dtype=np.float32)
    data = to_bytes(flat)
    assert data == np.array([1.0, -2.5, 3.25], dtype="<f4").tobytes()
    assert len(data) == 12
    assert np.array_equal(from_bytes(data), flat)
    assert checksum(data) == __import__("hashlib").sha256(data).hexdigest()


def test_record_round_trips_through_avro() -> None:
    net = DrnQNetwork(CONFIG)
    flat, layout = flatten(net), layout_of(net)
    rec = _record(flat, layout)
    decoded = serde.decode("ModelWeights", serde.encode("ModelWeights", rec))
    assert decoded["checksum"] == checksum(decoded["weights"])
    assert decoded["explore_seeds"] == [11, 12]
    assert DrnConfig.from_json(decoded["architecture"]) == CONFIG
    got_flat, got_layout = parse_model_weights_record(decoded)
    assert got_layout == layout
    assert np.array_equal(got_flat, flat)


def test_parse_rejects_bad_checksum() -> None:
    layout = CONFIG.layout()
    rec = _record(np.ones(layout_size(layout), np.float32), layout)
    rec["weights"] = to_bytes(np.full(layout_size(layout), 2.0, np.float32))
    with pytest.raises(WeightsError, match=r"version=4.*checksum mismatch"):
        parse_model_weights_record(rec)


def test_parse_rejects_size_mismatch() -> None:
    layout = CONFIG.layout()
    rec = _record(np.ones(layout_size(layout), np.float32), layout)
    rec["weights"] = rec["weights"][:-4]
    rec["checksum"] = checksum(rec["weights"])
    with pytest.raises(WeightsError, match="layout needs"):
        parse_model_weights_record(rec)
    rec["weights"] = rec["weights"][:-1]
    rec["checksum"] = checksum(rec["weights"])
    with pytest.raises(WeightsError, match="whole number of float32"):
        parse_model_weights_record(rec)


def test_parse_rejects_non_finite() -> None:
    layout = CONFIG.layout()
    flat = np.ones(layout_size(layout), np.float32)
    flat[17] = np.nan
    data = to_bytes(flat)
    rec = _record(np.ones_like(flat), layout)
    rec["weights"], rec["checksum"] = data, checksum(data)
    with pytest.raises(WeightsError, match="flat index 17 is not finite"):
        parse_model_weights_record(rec)


def test_make_record_validates() -> None:
    layout = CONFIG.layout()
    good = np.ones(layout_size(layout), np.float32)
    with pytest.raises(WeightsError, match="kind"):
        _record(good, layout, kind="PATCH")
    with pytest.raises(WeightsError, match="not finite"):
        _record(np.full_like(good, np.inf), layout)
    with pytest.raises(WeightsError, match="layout needs"):
        _record(good[:-1], layout)
    with pytest.raises(WeightsError, match="model_id"):
        _record(good, layout, model_id="")
