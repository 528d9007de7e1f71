"""The DRN Q-network (dueling): a state tower gives V(s) and a state representation, an action tower
over (state representation, action features) gives A(s, a), and Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a').

Centring: the advantage is centred by its mean over the *candidate set* of the request (masked mean
when batched), as in DRN / dueling DQN, so V(s) is identifiable and Q's scale does not drift with A.
Ranking within one candidate set only depends on A.

Two implementations of the same function:
- `DrnQNetwork` (torch): training (the major update, Double DQN) and a reference forward;
- `DrnScorer` (numpy): serving from a flat ModelWeights vector, without autograd overhead.
Both are built from the same layout (models/weights.py) and agree to 1e-5.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.perturbation import without_explore
from models.weights import FlatWeights, Layout, ParamSpec, WeightsError, check_flat, split

STATE_LAYER = "state_layers.{i}"
ACTION_LAYER = "action_layers.{i}"


@dataclass(frozen=True)
class DrnConfig:
    """Sizes of the DRN Q-network and the seed of its initial weights."""

    state_dim: int
    action_dim: int
    state_hidden: tuple[int, ...] = (128, 64)
    action_hidden: tuple[int, ...] = (128, 64)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_hidden", tuple(int(h) for h in self.state_hidden))
        object.__setattr__(self, "action_hidden", tuple(int(h) for h in self.action_hidden))
        if self.state_dim < 1:
            raise ValueError(f"DrnConfig.state_dim must be >= 1, got {self.state_dim}")
        if self.action_dim < 1:
            raise ValueError(f"DrnConfig.action_dim must be >= 1, got {self.action_dim}")
        if not self.state_hidden:
            raise ValueError(
                "DrnConfig.state_hidden needs at least one layer (it is the state representation)"
            )
        if not self.action_hidden:
            raise ValueError("DrnConfig.action_hidden needs at least one layer")
        if any(h < 1 for h in (*self.state_hidden, *self.action_hidden)):
            raise ValueError(
                "DrnConfig hidden sizes must be >= 1, got "
                f"state {self.state_hidden}, action {self.action_hidden}"
            )
        if self.seed < 0:
            raise ValueError(f"DrnConfig.seed must be >= 0, got {self.seed}")

    def to_json(self) -> str:
        """The `architecture` string of ModelWeights records."""
        return json.dumps({"family": "drn", **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DrnConfig:
        d = without_explore(json.loads(text))
        if d.pop("family", "drn") != "drn":
            raise ValueError(f"architecture is not a DRN network: {text}")
        return cls(**d)

    def layout(self) -> Layout:
        """The ModelWeights layout of this network (without building it)."""
        specs: Layout = []
        fan_in = self.state_dim
        for i, h in enumerate(self.state_hidden):
            specs += _linear_specs(STATE_LAYER.format(i=i), fan_in, h)
            fan_in = h
        specs += _linear_specs("value_head", fan_in, 1)
        fan_in = self.state_hidden[-1] + self.action_dim
        for i, h in enumerate(self.action_hidden):
            specs += _linear_specs(ACTION_LAYER.format(i=i), fan_in, h)
            fan_in = h
        specs += _linear_specs("advantage_head", fan_in, 1)
        return specs

    @classmethod
    def from_layout(cls, layout: Sequence[ParamSpec], seed: int = 0) -> DrnConfig:
        """The sizes a layout encodes (the seed is not in the layout)."""
        shapes = {p.name: p.shape for p in layout}
        try:
            state_hidden, action_hidden = [], []
            i = 0
            while f"{STATE_LAYER.format(i=i)}.weight" in shapes:
                state_hidden.append(shapes[f"{STATE_LAYER.format(i=i)}.weight"][0])
                i += 1
            state_dim = shapes[f"{STATE_LAYER.format(i=0)}.weight"][1]
            i = 0
            while f"{ACTION_LAYER.format(i=i)}.weight" in shapes:
                action_hidden.append(shapes[f"{ACTION_LAYER.format(i=i)}.weight"][0])
                i += 1
            action_dim = shapes[f"{ACTION_LAYER.format(i=0)}.weight"][1] - state_hidden[-1]
            cfg = cls(state_dim, action_dim, tuple(state_hidden), tuple(action_hidden), seed)
        except (KeyError, IndexError, ValueError) as e:
            raise WeightsError(f"layout is not a DRN network layout: {e}") from None
        if cfg.layout() != list(layout):
            raise WeightsError("layout is not a DRN network layout: parameter names/order/shapes differ")
        return cfg


def _linear_specs(prefix: str, fan_in: int, fan_out: int) -> Layout:
    return [ParamSpec(f"{prefix}.weight", (fan_out, fan_in)), ParamSpec(f"{prefix}.bias", (fan_out,))]


class DrnQNetwork(nn.Module):
    """Dueling Q(s, a) for a candidate set. Parameter (layout) order: state_layers.*, value_head,
    action_layers.*, advantage_head; each Linear as weight [out, in] then bias."""

    def __init__(self, config: DrnConfig) -> None:
        super().__init__()
        self.config = config
        dims = [config.state_dim, *config.state_hidden]
        self.state_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.value_head = nn.Linear(dims[-1], 1)
        adims = [config.state_hidden[-1] + config.action_dim, *config.action_hidden]
        self.action_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(adims))
        self.advantage_head = nn.Linear(adims[-1], 1)
        self.reset_parameters(config.seed)

    def reset_parameters(self, seed: int) -> None:
        """Seeded init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights *and* biases (torch's Linear
        default). Biases must not start at zero: DRN's multiplicative ΔW = α·u·W never moves a zero."""
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    bound = 1.0 / math.sqrt(m.in_features)
                    m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
                    m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * bound)

    def state_repr(self, states: torch.Tensor) -> torch.Tensor:
        """[..., Ds] -> the state tower's last hidden layer [..., Hs]."""
        h = states
        for layer in self.state_layers:
            h = torch.relu(layer(h))
        return h

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Batched Q: states [B, Ds], actions [B, N, Da], mask [B, N] (True = a real candidate) -> Q [B, N].

        Padded (masked-out) entries are returned as 0.0 (finite, so losses stay NaN-free); use
        `masked_argmax` / `masked_max` to pick over real candidates only.
        """
        if mask is None:
            mask = torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
        hs = self.state_repr(states)  # [B, Hs]
        value = self.value_head(hs)  # [B, 1]
        first = self.action_layers[0]
        assert isinstance(first, nn.Linear)
        hs_dim = self.config.state_hidden[-1]
        # concat(hs, a) @ W1^T split into a state part (once per row) and an action part (per candidate)
        state_part = nn.functional.linear(hs, first.weight[:, :hs_dim], first.bias)  # [B, H1]
        h = torch.relu(nn.functional.linear(actions, first.weight[:, hs_dim:]) + state_part.unsqueeze(1))
        for layer in list(self.action_layers)[1:]:
            h = torch.relu(layer(h))
        adv = self.advantage_head(h).squeeze(-1)  # [B, N]
        maskf = mask.to(adv.dtype)
        mean_adv = (adv * maskf).sum(dim=1, keepdim=True) / maskf.sum(dim=1, keepdim=True).clamp(min=1.0)
        q = value + adv - mean_adv
        return q.masked_fill(~mask, 0.0)

    def q(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One request: state [Ds], actions [N, Da] -> Q [N]."""
        return self.forward(state.unsqueeze(0), actions.unsqueeze(0)).squeeze(0)

    @staticmethod
    def masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Index of the best real candidate per row [B] (Double DQN: argmax with the online net)."""
        return q.masked_fill(~mask, float("-inf")).argmax(dim=1)

    @staticmethod
    def masked_max(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best real candidate's Q per row [B]; 0.0 for a row with no candidate (terminal)."""
        best = q.masked_fill(~mask, float("-inf")).max(dim=1).values
        return torch.where(mask.any(dim=1), best, torch.zeros_like(best))


class DrnScorer:
    """numpy DRN forward for serving: scores one request's candidates from a flat weight vector.

    Same math and layout as DrnQNetwork; matrices are transposed once at construction.
    """

    def __init__(self, flat: npt.ArrayLike, layout: Sequence[ParamSpec]) -> None:
        self.config = DrnConfig.from_layout(layout)
        self.flat: FlatWeights = check_flat(flat, layout)
        p = split(self.flat, layout)
        cfg = self.config
        self._state = [
            (
                np.ascontiguousarray(p[f"{STATE_LAYER.format(i=i)}.weight"].T),
                p[f"{STATE_LAYER.format(i=i)}.bias"],
            )
            for i in range(len(cfg.state_hidden))
        ]
        self._value_w = p["value_head.weight"][0]
        self._value_b = float(p["value_head.bias"][0])
        hs_dim = cfg.state_hidden[-1]
        w1 = p[f"{ACTION_LAYER.format(i=0)}.weight"]
        self._first_state_w = w1[:, :hs_dim]
        self._first_action_wt = np.ascontiguousarray(w1[:, hs_dim:].T)
        self._first_b = p[f"{ACTION_LAYER.format(i=0)}.bias"]
        self._action = [
            (
                np.ascontiguousarray(p[f"{ACTION_LAYER.format(i=i)}.weight"].T),
                p[f"{ACTION_LAYER.format(i=i)}.bias"],
            )
            for i in range(1, len(cfg.action_hidden))
        ]
        self._adv_w = p["advantage_head.weight"][0]
        self._adv_b = float(p["advantage_head.bias"][0])
        self._solo: DrnStack | None = None

    @property
    def state_dim(self) -> int:
        return self.config.state_dim

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    def q(self, state: npt.ArrayLike, actions: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """state [Ds], actions [N, Da] -> Q [N] (float32), computed as a stack of this one network, so that a
        DrnStack of several networks gives each its exact bits on every CPU (see DrnStack)."""
        if self._solo is None:
            self._solo = DrnStack([self])
        return self._solo.q_all(state, actions)[0]


class DrnStack:
    """The networks of one serving round (W and each W~) scored together: their weights stacked along a
    leading axis, so each layer is one batched np.matmul over all networks instead of one call per network.

    Bit-identical to each DrnScorer.q on every CPU, because DrnScorer.q is this computation over a stack of
    one: np.matmul runs the same BLAS call per stacked slice whatever the number of slices. A plain
    vector-matrix forward is not: on an AVX-512 machine OpenBLAS picks another kernel for it than for the
    batched product and the last bit of many scores differs (it did not on the AVX2 machine the fast path
    was written on). Concatenating the networks' weights side by side into one wider gemm would be faster
    still, but OpenBLAS then blocks the sums differently, so it is not used.
    """

    def __init__(self, scorers: Sequence[DrnScorer]) -> None:
        if not scorers or any(s.config != scorers[0].config for s in scorers):
            raise ValueError("DrnStack needs one or more DrnScorers of the same architecture")
        self.scorers = tuple(scorers)
        first = scorers[0]
        self.config = first.config
        self._state = [
            (np.stack([s._state[i][0] for s in scorers]), np.stack([s._state[i][1] for s in scorers])[:, None, :])
            for i in range(len(first._state))
        ]
        self._value_w = np.stack([s._value_w for s in scorers])[:, :, None]
        self._value_b = [s._value_b for s in scorers]
        self._first_state_w = np.stack([s._first_state_w for s in scorers])
        self._first_b = np.stack([s._first_b for s in scorers])[:, :, None]
        self._first_action_wt = np.stack([s._first_action_wt for s in scorers])
        self._action = [
            (np.stack([s._action[i][0] for s in scorers]), np.stack([s._action[i][1] for s in scorers])[:, None, :])
            for i in range(len(first._action))
        ]
        self._adv_w = np.stack([s._adv_w for s in scorers])[:, :, None]
        self._adv_b = [s._adv_b for s in scorers]

    def q_all(self, state: npt.ArrayLike, actions: npt.ArrayLike) -> list[npt.NDArray[np.float32]]:
        """state [Ds], actions [N, Da] -> one Q [N] (float32) per network, as `scorers[i].q` gives it."""
        n = len(self.scorers)
        s = np.asarray(state, dtype=np.float32)
        a = np.asarray(actions, dtype=np.float32)
        x = np.broadcast_to(s, (n, 1, s.shape[-1]))  # [n, 1, Ds]: every network sees the same state
        for wt, b in self._state:
            x = np.matmul(x, wt)
            x += b
            np.maximum(x, 0.0, out=x)
        value = np.matmul(x, self._value_w)  # [n, 1, 1]
        state_part = np.matmul(self._first_state_w, x.transpose(0, 2, 1))  # [n, H1, 1]
        state_part += self._first_b
        h = np.matmul(a, self._first_action_wt)  # [n, N, H1]
        h += state_part.transpose(0, 2, 1)
        np.maximum(h, 0.0, out=h)
        for wt, b in self._action:
            h = np.matmul(h, wt)
            h += b
            np.maximum(h, 0.0, out=h)
        advs = np.matmul(h, self._adv_w)[:, :, 0]  # [n, N]
        out: list[npt.NDArray[np.float32]] = []
        for i in range(n):
            adv = advs[i] + self._adv_b[i]
            if adv.size == 0:
                out.append(adv.astype(np.float32))
                continue
            v = float(value[i, 0, 0]) + self._value_b[i]
            out.append((adv + np.float32(v - float(adv.sum(dtype=np.float64)) / adv.size)).astype(np.float32))
        return out


class TorchScorer:
    """Torch forward behind the DrnScorer interface (for the numpy-vs-torch serving benchmark)."""

    def __init__(self, flat: npt.ArrayLike, layout: Sequence[ParamSpec]) -> None:
        from models.weights import unflatten_into

        self.config = DrnConfig.from_layout(layout)
        self.flat: FlatWeights = check_flat(flat, layout)
        self.network = DrnQNetwork(self.config).eval()
        unflatten_into(self.network, self.flat, layout)

    @property
    def state_dim(self) -> int:
        return self.config.state_dim

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    def q(self, state: npt.ArrayLike, actions: npt.ArrayLike) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            s = torch.as_tensor(np.asarray(state, dtype=np.float32))
            a = torch.as_tensor(np.asarray(actions, dtype=np.float32))
            out: npt.NDArray[np.float32] = self.network.q(s, a).numpy()
        return out


def network_from_flat(flat: npt.ArrayLike, layout: Sequence[ParamSpec], seed: int = 0) -> DrnQNetwork:
    """A DrnQNetwork holding the given weights (e.g. to train on from a ModelWeights record)."""
    from models.weights import unflatten_into

    net = DrnQNetwork(DrnConfig.from_layout(layout, seed=seed))
    unflatten_into(net, flat, layout)
    return net


def describe(config: DrnConfig) -> dict[str, Any]:
    """Sizes and parameter count, for logs and reports."""
    return {**asdict(config), "parameters": sum(p.size for p in config.layout())}
