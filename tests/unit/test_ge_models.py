"""GE models without training: pointer masking, evaluator causality, DeepSet invariance, flat weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.ge.environment import EnvConfig, ListEnvironment
from models.ge.evaluator import EvaluatorConfig, ListEvaluator
from models.ge.pointer_generator import GeneratorConfig, PointerGenerator, candidate_rank
from models.ge.tensors import RequestTensors
from models.perturbation import explore_weights
from models.weights import WeightsError, flatten, layout_of, unflatten_into

torch.set_num_threads(1)

TINY = EnvConfig(n_users=50, n_items=300, n_shops=8, n_types=4, item_dim=6, user_dim=4, latent_dim=4,
                 candidates=12, list_size=5)
ENV = ListEnvironment(TINY, seed=0)


def _gen_config() -> GeneratorConfig:
    return GeneratorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types, hidden=16)


def _eval_config() -> EvaluatorConfig:
    return EvaluatorConfig(TINY.item_dim, TINY.user_dim, TINY.n_shops, TINY.n_types, hidden=16, layers=2,
                           feedforward=32)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), list_size=st.integers(1, 12), weight_scale=st.floats(0.1, 20.0),
       sample=st.booleans())
def test_pointer_never_repeats_and_pins_the_trigger(seed: int, list_size: int, weight_scale: float,
                                                      sample: bool) -> None:
    gen = PointerGenerator(_gen_config(), seed=seed)
    with torch.no_grad():  # large weights make peaked distributions: masking must still hold
        for p in gen.parameters():
            p.mul_(weight_scale)
    requests = ENV.make_requests(16, np.random.default_rng(seed))
    tensors = RequestTensors.from_batch(requests)
    lists, log_prob = gen.decode(tensors, list_size, sample=sample,
                                 generator=torch.Generator().manual_seed(seed))
    assert lists.shape == (16, list_size)
    assert torch.isfinite(log_prob).all() and (log_prob <= 1e-6).all()
    for row, pinned in zip(lists.tolist(), requests.pinned.tolist(), strict=True):
        assert len(set(row)) == list_size
        assert all(0 <= i < TINY.candidates for i in row)
        if pinned >= 0:
            assert row[0] == pinned


def test_pointer_log_prob_of_a_full_permutation_sums_over_choices() -> None:
    """With N = M and no pin, greedy log-prob is a product of per-step choices: it must be <= 0 and the
    sampled lists must cover distinct permutations (the policy explores)."""
    gen = PointerGenerator(_gen_config(), seed=1)
    req = ENV.make_requests(1, np.random.default_rng(4))
    req = req.take([0] * 64)
    tensors = RequestTensors.from_batch(req)
    tensors = RequestTensors(tensors.user_features, tensors.item_features, tensors.shop, tensors.item_type,
                             tensors.ranker_score, torch.full((64,), -1))
    lists, _ = gen.decode(tensors, 4, sample=True, generator=torch.Generator().manual_seed(0))
    assert len({tuple(r) for r in lists.tolist()}) > 1


def test_deepset_encoding_is_permutation_equivariant() -> None:
    gen = PointerGenerator(_gen_config(), seed=2)
    req = ENV.make_requests(3, np.random.default_rng(1))
    perm = np.random.default_rng(0).permutation(TINY.candidates)
    a = RequestTensors.from_batch(req)
    shuffled = req.take(np.arange(3))
    shuffled = type(req)(**{**shuffled.__dict__, **{
        k: getattr(req, k)[:, perm] for k in ("candidates", "item_features", "shop", "item_type",
                                              "ranker_score")}})
    b = RequestTensors.from_batch(shuffled)
    with torch.no_grad():
        enc_a, sum_a = gen.encode(a)
        enc_b, sum_b = gen.encode(b)
    assert torch.allclose(sum_a, sum_b, atol=1e-5)
    assert torch.allclose(enc_a[:, perm], enc_b, atol=1e-5)


def test_candidate_rank_is_rank_within_the_set() -> None:
    rank = candidate_rank(torch.tensor([[0.5, 2.0, -1.0]]))
    assert torch.allclose(rank, torch.tensor([[0.5, 0.0, 1.0]]))


def test_evaluator_is_unidirectional() -> None:
    """Changing the item at position k changes no prediction before k (and does change k)."""
    ev = ListEvaluator(_eval_config(), seed=0).eval()
    req = RequestTensors.from_batch(ENV.make_requests(8, np.random.default_rng(2)))
    lists = torch.arange(5).repeat(8, 1)
    for k in range(1, 5):
        changed = lists.clone()
        changed[:, k] = 6 + k
        with torch.no_grad():
            before = ev(req.gather(lists))
            after = ev(req.gather(changed))
        assert torch.allclose(before[:, :k], after[:, :k], atol=1e-6)
        assert not torch.allclose(before[:, k], after[:, k], atol=1e-6)


def test_flat_weights_round_trip_and_perturbation_moves_the_policy() -> None:
    gen = PointerGenerator(_gen_config(), seed=3)
    flat, layout = flatten(gen), layout_of(gen)
    assert flat.dtype == np.float32
    assert [spec.name for spec in layout] == [name for name, _ in gen.named_parameters()]
    assert flat.size == sum(p.numel() for p in gen.parameters())
    twin = PointerGenerator(_gen_config(), seed=99)
    unflatten_into(twin, flat, layout)
    req = RequestTensors.from_batch(ENV.make_requests(32, np.random.default_rng(3)))
    with torch.no_grad():
        assert torch.equal(gen.decode(req, 5, sample=False)[0], twin.decode(req, 5, sample=False)[0])
        unflatten_into(twin, explore_weights(flat, seed=7, alpha=0.5), layout)
        assert not torch.equal(gen.decode(req, 5, sample=False)[0], twin.decode(req, 5, sample=False)[0])
    with pytest.raises(WeightsError, match="layout does not match"):
        unflatten_into(twin, flat, layout[::-1])
    with pytest.raises(WeightsError, match="values"):
        unflatten_into(twin, flat[:-1], layout)


def test_model_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="divisible by heads"):
        EvaluatorConfig(4, 4, 2, 2, hidden=10, heads=3)
    with pytest.raises(ValueError, match=r"GeneratorConfig\.hidden"):
        GeneratorConfig(4, 4, 2, 2, hidden=0)
