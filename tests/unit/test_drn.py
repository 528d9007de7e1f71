"""DRN Q-network: dueling centring, batched vs single forward, seeded init, numpy scorer agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.drn import DrnConfig, DrnQNetwork, DrnScorer, TorchScorer, network_from_flat
from models.weights import WeightsError, flatten, layout_of

torch.set_num_threads(1)
CONFIG = DrnConfig(state_dim=6, action_dim=10, state_hidden=(16, 12), action_hidden=(20, 8), seed=1)


def _inputs(seed: int, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=CONFIG.state_dim).astype(np.float32), rng.normal(
        size=(n, CONFIG.action_dim)
    ).astype(np.float32)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="state_dim"):
        DrnConfig(state_dim=0, action_dim=3)
    with pytest.raises(ValueError, match="state_hidden"):
        DrnConfig(state_dim=2, action_dim=3, state_hidden=())
    with pytest.raises(ValueError, match="hidden sizes"):
        DrnConfig(state_dim=2, action_dim=3, action_hidden=(4, 0))


def test_config_json_and_layout_round_trip() -> None:
    assert DrnConfig.from_json(CONFIG.to_json()) == CONFIG
    assert DrnConfig.from_layout(CONFIG.layout(), seed=CONFIG.seed) == CONFIG
    with pytest.raises(WeightsError, match="not a DRN"):
        DrnConfig.from_layout(CONFIG.layout()[:-1])


def test_seeded_init_repeats_and_differs_by_seed() -> None:
    a, b = flatten(DrnQNetwork(CONFIG)), flatten(DrnQNetwork(CONFIG))
    c = flatten(DrnQNetwork(DrnConfig(6, 10, (16, 12), (20, 8), seed=2)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # no zero parameter: a multiplicative ΔW = α·u·W could never move it
    assert np.all(a != 0)


def test_q_is_value_plus_centred_advantage() -> None:
    net = DrnQNetwork(CONFIG)
    s, a = (torch.from_numpy(x) for x in _inputs(0))
    with torch.no_grad():
        q = net.q(s, a)
        v = net.value_head(net.state_repr(s)).item()
    assert q.shape == (30,)
    assert q.mean().item() == pytest.approx(v, abs=1e-5)
    assert q.std().item() > 0


def test_batched_forward_matches_single_and_ignores_padding() -> None:
    net = DrnQNetwork(CONFIG)
    s0, a0 = _inputs(1, n=7)
    s1, a1 = _inputs(2, n=4)
    states = torch.from_numpy(np.stack([s0, s1]))
    actions = torch.zeros(2, 7, CONFIG.action_dim)
    actions[0] = torch.from_numpy(a0)
    actions[1, :4] = torch.from_numpy(a1)
    actions[1, 4:] = 100.0  # padding garbage must not change the real candidates' Q
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[0] = True
    mask[1, :4] = True
    with torch.no_grad():
        q = net(states, actions, mask)
        single1 = net.q(torch.from_numpy(s1), torch.from_numpy(a1))
        single0 = net.q(torch.from_numpy(s0), torch.from_numpy(a0))
    assert torch.allclose(q[0], single0, atol=1e-6)
    assert torch.allclose(q[1, :4], single1, atol=1e-6)
    assert torch.all(q[1, 4:] == 0)
    best = DrnQNetwork.masked_argmax(q, mask)
    assert best[1].item() == int(single1.argmax())
    assert DrnQNetwork.masked_max(q, mask)[1].item() == pytest.approx(single1.max().item())


def test_gradients_reach_every_parameter() -> None:
    net = DrnQNetwork(CONFIG)
    s, a = _inputs(3, n=5)
    q = net(torch.from_numpy(s)[None], torch.from_numpy(a)[None])
    (q[0, 2] - 1.0).pow(2).backward()
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in net.parameters())


@pytest.mark.parametrize("n", [1, 3, 100])
def test_numpy_and_torch_scorers_agree(n: int) -> None:
    net = DrnQNetwork(CONFIG)
    flat, layout = flatten(net), layout_of(net)
    s, a = _inputs(4, n=n)
    with torch.no_grad():
        ref = net.q(torch.from_numpy(s), torch.from_numpy(a)).numpy()
    np.testing.assert_allclose(DrnScorer(flat, layout).q(s, a), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(TorchScorer(flat, layout).q(s, a), ref, atol=1e-5, rtol=0)


def test_network_from_flat_reproduces_scores() -> None:
    net = DrnQNetwork(CONFIG)
    copy = network_from_flat(flatten(net), layout_of(net))
    s, a = (torch.from_numpy(x) for x in _inputs(5))
    with torch.no_grad():
        assert torch.equal(net.q(s, a), copy.q(s, a))


def test_scorer_handles_empty_candidate_set() -> None:
    net = DrnQNetwork(CONFIG)
    out = DrnScorer(flatten(net), layout_of(net)).q(np.zeros(6, np.float32), np.zeros((0, 10), np.float32))
    assert out.shape == (0,)
