"""schemas/fast_encode.py writes the bytes fastavro writes for every Impression and Click, and is on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import fast_encode, serde

longs = st.integers(-(2**63), 2**63 - 1)
f32 = st.floats(width=32, allow_nan=False)
text = st.text(max_size=12)

slot = st.fixed_dictionaries({
    "item_id": text, "position": st.integers(-(2**31), 2**31 - 1), "team": st.sampled_from(["CURRENT", "EXPLORE"]),
    "features": st.lists(f32, max_size=30), "explore_seed": st.none() | longs,
})
impression = st.fixed_dictionaries({
    "request_id": text, "user_id": text, "event_time": longs, "model_id": text, "model_version": longs,
    "explore_seed": longs, "slots": st.lists(slot, max_size=12), "state_features": st.lists(f32, max_size=20),
    "explore_seeds": st.lists(longs, max_size=5), "interleaving": text, "generator": st.none() | text,
    "pdgd": st.none() | st.fixed_dictionaries({"temperature": st.floats(), "log_rest": st.floats()}),
})


def test_the_fast_path_is_on() -> None:
    """Off means schemas/impression.avsc changed: bring IMPRESSION_LAYOUT and the encoder up to date."""
    assert fast_encode.ACTIVE


@given(impression)
def test_same_bytes_as_fastavro(record: dict[str, Any]) -> None:
    assert fast_encode._fast(record) == serde.encode("Impression", record, check=False)
    assert serde.decode("Impression", fast_encode.encode_impression(record))["slots"] == [
        {**s, "features": pytest.approx(s["features"], nan_ok=True)} for s in record["slots"]]


@pytest.mark.parametrize("policy", ["random", "popular", "oracle"])
def test_same_bytes_for_simulated_impressions(policy: str) -> None:
    from drnflow import datasets
    from models.simulator import Simulator, SimulatorConfig
    from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy

    world = datasets.world()
    users = {u: i for i, u in enumerate(world.ml.user_ids)}
    ranker: Any = {"random": RandomPolicy(), "popular": PopularPolicy(),
              "oracle": OraclePolicy(world.grades, users, world.item_index)}[policy]
    for step in Simulator(world, ranker, SimulatorConfig(seed=1)).run(50):
        assert fast_encode._fast(step.impression) == serde.encode("Impression", step.impression, check=False)


def test_what_it_does_not_handle_goes_to_fastavro() -> None:
    """A numpy int, a bool: not the fast path's types; fastavro encodes them (or names the error)."""
    import numpy as np

    record: dict[str, Any] = {
        "request_id": "r", "user_id": "u", "event_time": np.int64(5), "model_id": "m", "model_version": True,
        "explore_seed": 0, "slots": [], "state_features": [], "explore_seeds": [], "interleaving": "none",
        "generator": None, "pdgd": None,
    }
    assert fast_encode.encode_impression(record) == serde.encode("Impression", record, check=False)
    with pytest.raises(serde.SerdeError):
        fast_encode.encode_impression({**record, "slots": [{"item_id": 1}]})


# Any double (NaN, +-inf, -0.0, subnormals, values a float32 cannot hold), any unicode, any Avro long.
any_float = st.floats(allow_nan=True, allow_infinity=True)
f32_any = st.floats(width=32, allow_nan=True, allow_infinity=True)
unicode = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)  # lone surrogates: see the refusals
feature_list = st.one_of(
    st.lists(any_float, max_size=26),
    st.lists(f32_any, max_size=26).map(lambda v: __import__("numpy").asarray(v, dtype="float32")),
    st.lists(f32_any, max_size=26).map(lambda v: __import__("numpy").asarray(v, dtype="float32").tolist()),
)
wide_slot = st.fixed_dictionaries({
    "item_id": unicode, "position": st.integers(-(2**31), 2**31 - 1) | st.integers(0, 9),
    "team": st.sampled_from(["CURRENT", "EXPLORE"]), "features": feature_list, "explore_seed": st.none() | longs,
})
wide_impression = st.fixed_dictionaries({
    "request_id": unicode, "user_id": unicode, "event_time": longs | st.integers(0, 2**45), "model_id": unicode,
    "model_version": longs | st.integers(-600, 600), "explore_seed": longs | st.integers(-600, 600),
    "slots": st.lists(wide_slot, max_size=10), "state_features": feature_list,
    "explore_seeds": st.lists(longs | st.integers(-600, 600), max_size=5), "interleaving": unicode,
    "generator": st.none() | unicode,
    "pdgd": st.none() | st.fixed_dictionaries({"temperature": any_float, "log_rest": any_float}),
})


@given(wide_impression)
def test_same_bytes_as_fastavro_for_any_values(record: dict[str, Any]) -> None:
    """What the fast path encodes is fastavro's bytes; what it hands on (a double out of float32's range)
    fastavro encodes: encode_impression is serde.encode for every record either takes."""
    want = serde.encode("Impression", record, check=False)
    assert fast_encode.encode_impression(record) == want
    try:
        fast = fast_encode._fast(record)
    except OverflowError:  # a float32 overflow: handed to fastavro, checked above
        return
    assert fast == want


def test_edge_values_byte_for_byte() -> None:
    """Every optional field null and set, empty lists, NaN and infinities, the long's ends, multi-byte ids."""
    nan, inf = float("nan"), float("inf")
    slot = {"item_id": "é🎬\u0000", "position": 0, "team": "EXPLORE", "features": [nan, -nan, inf, -inf, -0.0, 1e-45],
            "explore_seed": -(2**63)}
    base: dict[str, Any] = {
        "request_id": "r-ü", "user_id": "", "event_time": 2**63 - 1, "model_id": "m", "model_version": -1,
        "explore_seed": 2**63 - 1, "slots": [slot, {**slot, "explore_seed": None, "features": [],
                                                    "team": "CURRENT", "position": 2**31 - 1}],
        "state_features": [3.4028234663852886e38, -3.4028234663852886e38], "explore_seeds": [-(2**63), 0, 2**63 - 1],
        "interleaving": "team_draft", "generator": "ge", "pdgd": {"temperature": 0.01, "log_rest": -inf},
    }
    empty = {**base, "slots": [], "state_features": [], "explore_seeds": [], "generator": None, "pdgd": None}
    for record in (base, empty, {**base, "pdgd": {"temperature": nan, "log_rest": inf}},
                   {**base, "state_features": [1e39]}):  # a float32 overflow: fastavro's bytes
        assert fast_encode.encode_impression(record) == serde.encode("Impression", record, check=False)


def test_what_fastavro_refuses_is_refused() -> None:
    """Out-of-range longs, a lone surrogate, an unknown team: the same SerdeError as before."""
    ok: dict[str, Any] = {
        "request_id": "r", "user_id": "u", "event_time": 1, "model_id": "m", "model_version": 0,
        "explore_seed": 0, "slots": [], "state_features": [], "explore_seeds": [], "interleaving": "none",
        "generator": None, "pdgd": None,
    }
    bad_slot = {"item_id": "i", "position": 0, "team": "NEITHER", "features": [], "explore_seed": None}
    for record in ({**ok, "event_time": 2**63}, {**ok, "explore_seeds": [-(2**63) - 1]}, {**ok, "user_id": "\ud800"},
                   {**ok, "slots": [bad_slot]}):
        with pytest.raises(serde.SerdeError):
            serde.encode("Impression", record, check=False)
        with pytest.raises(serde.SerdeError):
            fast_encode.encode_impression(record)


click = st.fixed_dictionaries({
    "request_id": unicode | text, "item_id": unicode | text, "event_time": longs | st.integers(0, 2**45),
    "user_id": st.none() | unicode,
})


def test_the_click_fast_path_is_on() -> None:
    """Off means schemas/click.avsc changed: bring CLICK_LAYOUT and the encoder up to date."""
    assert fast_encode.CLICK_ACTIVE


@given(click)
def test_click_same_bytes_as_fastavro(record: dict[str, Any]) -> None:
    want = serde.encode("Click", record, check=False)
    assert fast_encode._fast_click(record) == want
    assert fast_encode.encode_click(record) == want


def test_click_what_it_does_not_handle_goes_to_fastavro() -> None:
    import numpy as np

    record: dict[str, Any] = {"request_id": "r", "item_id": "i", "event_time": np.int64(7), "user_id": "u"}
    assert fast_encode.encode_click(record) == serde.encode("Click", record, check=False)
    for odd in ({**record, "event_time": True}, {"request_id": "r", "item_id": "i", "event_time": 3}):
        assert fast_encode.encode_click(odd) == serde.encode("Click", odd, check=False)
    with pytest.raises(serde.SerdeError):
        fast_encode.encode_click({**record, "item_id": 5})
