"""The job's Python per-window step (jobs.minor_update.DbgdStep) with in-memory stand-ins for Flink's
keyed state and timer service: buffering until final, rebasing on a MAJOR that arrives live, state
round trip. Pure: no broker, no Flink cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobs.minor_update_config import MinorUpdateConfig
from operators.dbgd_step import DbgdStep
from operators.model_weights_log import WeightsLog
from schemas import serde

WINDOW, ATTR = 10_000, 5_000


class _Value:
    def __init__(self) -> None:
        self.v: Any = None

    def value(self) -> Any:
        return self.v

    def update(self, v: Any) -> None:
        self.v = v


class _Map:
    def __init__(self) -> None:
        self.d: dict[Any, Any] = {}

    def get(self, k: Any) -> Any:
        return self.d.get(k)

    def put(self, k: Any, v: Any) -> None:
        self.d[k] = v

    def remove(self, k: Any) -> None:
        del self.d[k]

    def keys(self) -> list[Any]:
        return list(self.d)


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def inc(self, n: int = 1) -> None:
        self.n += n

    def dec(self, n: int = 1) -> None:
        self.n -= n


class _MetricGroup:
    """PyFlink's MetricGroup as WinRateMetrics uses it; metrics land in one dict by dotted name."""

    def __init__(self, registry: dict[str, Any], prefix: str = "") -> None:
        self.registry, self.prefix = registry, prefix

    def add_group(self, name: str, value: str | None = None) -> _MetricGroup:
        return _MetricGroup(self.registry, f"{self.prefix}{name}{'.' + value if value else ''}.")

    def gauge(self, name: str, fn: Any) -> None:
        self.registry[self.prefix + name] = fn

    def counter(self, name: str) -> _Counter:
        self.registry[self.prefix + name] = c = _Counter()
        return c


class _Runtime:
    """One key's state, as a keyed Flink operator would hand it to the function."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}

    def get_metrics_group(self) -> _MetricGroup:
        return _MetricGroup(self.metrics)

    def get_state(self, desc: Any) -> _Value:
        return self.states.setdefault(desc.name, _Value())

    def get_map_state(self, desc: Any) -> _Map:
        return self.states.setdefault(desc.name, _Map())


class _Ctx:
    def __init__(self, key: str) -> None:
        self.key = key
        self.timers: list[int] = []

    def get_current_key(self) -> str:
        return self.key

    def timer_service(self) -> _Ctx:
        return self

    def register_event_time_timer(self, t: int) -> None:
        self.timers.append(t)


class _Row(dict[str, Any]):
    def as_dict(self) -> dict[str, Any]:
        return dict(self)


def row(ws: int, version: int, explore: int, current: int) -> _Row:
    return _Row(model_id="m", window_start=ws, window_end=ws + WINDOW, model_version=version, explore_seed=ws,
                impressions=explore + current, explore_wins=explore, current_wins=current, ties=0, no_clicks=0,
                impression_offsets="0:0:5", click_offsets="")


def make_step(weights_log: WeightsLog) -> tuple[DbgdStep, _Runtime]:
    cfg = MinorUpdateConfig(window=WINDOW, attribution_window=ATTR, initial_state_dim=3, initial_action_dim=2,
                            trigger_every=None, trigger_every_minor=1)
    step, runtime = DbgdStep(cfg.step_config(), weights_log), _Runtime()
    step.open(runtime)
    return step, runtime


def decode_outputs(out: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    schemas = {"win-rates": "WinRate", "model-weights": "ModelWeights", "major-update-triggers": "MajorUpdateTrigger"}
    return [(r[0], serde.decode(schemas[r[0]], r[2])) for r in out]


def test_rows_wait_for_their_window_then_a_live_major_rebases_the_learner() -> None:
    cfg = MinorUpdateConfig(initial_state_dim=3, initial_action_dim=2)
    major_v4 = initial_major(cfg, "m", 4, 1)
    step, runtime = make_step(WeightsLog(latest_major={"m": major_v4}, max_version={"m": 6}))
    ctx = _Ctx("m")
    assert list(step.process_element1(row(0, 4, 9, 1), ctx)) == []
    assert ctx.timers == [WINDOW + ATTR], "a row waits for the watermark at window_end + attribution window"
    assert list(step.on_timer(WINDOW + ATTR - 1, ctx)) == [], "nothing is final before that"
    first = decode_outputs(list(step.on_timer(WINDOW + ATTR, ctx)))
    assert [t for t, _ in first] == ["win-rates", "model-weights", "major-update-triggers"]
    minor, trigger = first[1][1], first[2][1]
    assert (trigger["reason"], trigger["base_version"], trigger["event_time_end"]) == ("MINOR_COUNT", 7, WINDOW)
    assert [(r["partition"], r["start_offset"], r["end_offset"]) for r in trigger["impression_offsets"]] == [
        (0, 0, 5)]
    assert (minor["kind"], minor["parent_version"], minor["version"]) == ("MINOR", 4, 7), (
        "starts from the MAJOR read at start-up; never reuses a version already on the topic (6)")

    live_major = initial_major(replace(cfg, seed=5), "m", 20, 2)
    assert list(step.process_element2(("m", serde.encode("ModelWeights", live_major)), ctx)) == []
    list(step.process_element1(row(WINDOW, 20, 8, 2), ctx))
    second = decode_outputs(list(step.on_timer(2 * WINDOW + ATTR, ctx)))
    minor2 = next(r for t, r in second if t == "model-weights")
    assert (minor2["parent_version"], minor2["version"]) == (20, 21), "rebased on the live MAJOR v20"
    assert runtime.states["pending"].d == {}, "decided windows leave the buffer"
    metrics = runtime.metrics
    assert metrics["model.m.decisions.accept"].n == 2, "every emitted WinRate is recorded"
    assert (metrics["model.m.win_rate_permille"].n, metrics["model.m.model_version"].n) == (800, 20)


def test_a_model_without_major_gets_a_published_seed_model() -> None:
    step, _ = make_step(WeightsLog())
    ctx = _Ctx("m")
    list(step.process_element1(row(0, 0, 1, 5), ctx))
    out = decode_outputs(list(step.on_timer(WINDOW + ATTR, ctx)))
    assert [(t, r.get("kind"), r.get("version")) for t, r in out][:1] == [("model-weights", "MAJOR", 0)]
    assert [r["decision"] for t, r in out if t == "win-rates"] == ["REJECT"]


def initial_major(cfg: Any, model_id: str, version: int, created_at: int) -> dict[str, Any]:
    """The seeded MAJOR of `cfg`'s initial network, written without explore parameters."""
    from models.initial_model import initial_drn_record

    return initial_drn_record(model_id, cfg.initial_state_dim, cfg.initial_action_dim, cfg.seed,
                              version=version, created_at=created_at)
