"""The major update on a real broker: bounded read of a range, MAJOR published above every version of the
model (and taken by the DBGD learner), quality gate, and the ranges that publish nothing (empty, corrupt).
Training is tiny (small network, a few hundred steps on a synthetic log whose clicks follow a feature)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from jobs.major_update import follow_triggers, run_range
from models.dbgd import DbgdLearner
from models.drn import DrnConfig, DrnQNetwork
from models.major.ddqn import DdqnConfig, DdqnTrainer
from models.major.update import MajorUpdateConfig
from models.transitions import build_transitions
from models.weights import flatten, layout_of, make_model_weights_record, parse_model_weights_record
from schemas import serde
from schemas.topics import TopicNames

pytestmark = pytest.mark.integration
torch.set_num_threads(1)

T0 = 1_704_067_200_000
DS, DA, K, N = 4, 3, 5, 300
END = T0 + N * 1000


def synthetic_log(n: int, seed: int, t0: int = T0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Users click exactly the items whose first action feature is > 0.8."""
    rng = np.random.default_rng(seed)
    imps, clicks = [], []
    for i in range(n):
        rid, t = f"r{seed}-{i}", t0 + i * 1000
        feats = rng.normal(size=(K, DA)).astype(np.float32)
        imps.append({
            "request_id": rid, "user_id": f"u{i % 7}", "event_time": t, "model_id": "m", "model_version": 0,
            "explore_seed": 0, "explore_seeds": [], "interleaving": "none", "generator": None,
            "state_features": rng.normal(size=DS).tolist(),
            "slots": [{"item_id": f"i{j}", "position": j, "team": "CURRENT", "features": feats[j].tolist(),
                       "explore_seed": None} for j in range(K)],
        })
        clicks += [{"request_id": rid, "item_id": f"i{j}", "event_time": t + 10, "user_id": None}
                   for j in range(K) if feats[j, 0] > 0.8]
    return imps, clicks


def produce(bootstrap: str, topics: TopicNames, imps: list[dict[str, Any]], clicks: list[dict[str, Any]],
            garbage: int = 0, garbage_time: int = T0) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for r in imps:
        p.send(topics.impressions, key=r["request_id"].encode(), value=serde.encode("Impression", r),
               timestamp_ms=r["event_time"])
    for r in clicks:
        p.send(topics.clicks, key=r["request_id"].encode(), value=serde.encode("Click", r),
               timestamp_ms=r["event_time"])
    for i in range(garbage):
        p.send(topics.impressions, key=b"bad", value=b"\x02\xff not avro", timestamp_ms=garbage_time + i)
    p.flush()
    p.close()


def weights_record(net: DrnQNetwork, version: int, kind: str, model_id: str = "m") -> dict[str, Any]:
    return make_model_weights_record(model_id, version, None, kind, flatten(net), layout_of(net), T0, [],
                                     architecture=net.config.to_json())


def publish(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for r in records:
        p.send(topic, key=r["model_id"].encode(), value=serde.encode("ModelWeights", r))
    p.flush()
    p.close()


def read_all(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      isolation_level="read_committed")
    tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    out = []
    while any(c.position(tp) < ends[tp] for tp in tps):
        for recs in c.poll(timeout_ms=500).values():
            out += [serde.decode("ModelWeights", r.value) for r in recs]
    c.close()
    return out


def small_net(seed: int = 0) -> DrnQNetwork:
    return DrnQNetwork(DrnConfig(DS, DA, (16,), (16,), seed=seed))


def config(steps: int = 200, lr: float = 5e-3, margin: float = 0.01) -> MajorUpdateConfig:
    return MajorUpdateConfig(ddqn=DdqnConfig(steps=steps, batch_size=64, learning_rate=lr, seed=0, device="cpu",
                                             checkpoint_every=50),
                             gate_margin=margin)


def test_publishes_a_major_above_every_version_and_the_learner_rebases_on_it(
        kafka_bootstrap: str, topic_names: TopicNames, tmp_path: Path) -> None:
    imps, clicks = synthetic_log(N, seed=1)
    produce(kafka_bootstrap, topic_names, imps, clicks)
    base = small_net(0)
    publish(kafka_bootstrap, topic_names.model_weights, [
        weights_record(base, 0, "MAJOR"), weights_record(base, 1, "MINOR"), weights_record(base, 3, "MINOR"),
        weights_record(small_net(9), 40, "MAJOR", model_id="other"),  # another model's numbers do not count
    ])
    report = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(), tmp_path / "run", base_version=3)
    assert report["status"] == "PUBLISHED", report["reason"]
    assert report["published_version"] == 4
    assert report["input"]["impressions_used"] == N and report["input"]["corrupt_records"] == 0
    assert report["read"]["records"] == N + len(clicks)
    rows = {r["method"]: r for r in report["offline"]}
    assert {"LR", "FM", "DRN base", "DDQN (candidate)", "random", "logged order"} <= set(rows)
    assert rows["DDQN (candidate)"]["ndcg"] > rows["DRN base"]["ndcg"]
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["published_version"] == 4 and (tmp_path / "run" / "report.md").exists()

    weights = read_all(kafka_bootstrap, topic_names.model_weights)
    new = weights[-1]
    assert (new["model_id"], new["version"], new["kind"], new["parent_version"]) == ("m", 4, "MAJOR", 3)
    assert (new["window_start"], new["window_end"]) == (T0, END)
    assert new["created_at"] == END, "event time of what produced it (the trained range's end), not the wall clock"
    learner = DbgdLearner("m")
    assert learner.rebase(weights[0])  # the learner held v0 ...
    assert learner.rebase(new)  # ... and takes the MAJOR: its number is newer than any version
    assert learner.version == 4 and learner.minor_count == 0
    flat, _ = parse_model_weights_record(new)
    assert not np.array_equal(flat, flatten(base))

    # Run again in the same dir: a final report is not run again, nothing is published twice.
    again = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(), tmp_path / "run", base_version=3)
    assert again.get("skipped_as_done") and again["published_version"] == 4
    # A fresh dir with the same seed trains the same candidate: recognised by checksum, not republished.
    fresh = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(), tmp_path / "fresh", base_version=3)
    assert fresh["status"] == "ALREADY_PUBLISHED" and fresh["published_version"] == 4
    assert len(read_all(kafka_bootstrap, topic_names.model_weights)) == len(weights)
    # Keyed (the CLI's range runs): the same range, base and settings is done; other settings are a new run,
    # not the old report handed back as if it were theirs.
    keyed = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(), tmp_path / "k", base_version=3,
                      keyed=True)
    assert not keyed.get("skipped_as_done") and Path(keyed["run_dir"]).parent == tmp_path / "k"
    same = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(), tmp_path / "k", base_version=3,
                     keyed=True)
    assert same.get("skipped_as_done") and same["run_dir"] == keyed["run_dir"]
    other = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(steps=150), tmp_path / "k",
                      base_version=3, keyed=True)
    assert not other.get("skipped_as_done") and other["run_dir"] != keyed["run_dir"]


def test_gate_keeps_a_worse_candidate_unpublished(kafka_bootstrap: str, topic_names: TopicNames,
                                                  tmp_path: Path) -> None:
    imps, clicks = synthetic_log(N, seed=2)
    produce(kafka_bootstrap, topic_names, imps, clicks)
    # A good base: trained on data of the same kind; the candidate diverges (learning rate far too high).
    good = small_net(0)
    train_imps, train_clicks = synthetic_log(400, seed=5)
    data = build_transitions(train_imps, train_clicks, T0 + 400_000)
    DdqnTrainer(data, np.arange(data.n_impressions), good,
                DdqnConfig(steps=300, batch_size=64, learning_rate=5e-3, seed=0, device="cpu")).run()
    publish(kafka_bootstrap, topic_names.model_weights, [weights_record(good.cpu(), 0, "MAJOR")])
    report = run_range(kafka_bootstrap, topic_names, "m", T0, END, config(steps=60, lr=3.0), tmp_path / "run")
    assert report["status"] == "REJECTED"
    assert "worse than the base by more than the margin" in report["reason"]
    assert report["gate"]["passed"] is False and report["gate"]["candidate"] < report["gate"]["base"] - 0.01
    assert "Quality gate: FAILED" in (tmp_path / "run" / "report.md").read_text()
    assert [w["version"] for w in read_all(kafka_bootstrap, topic_names.model_weights)] == [0]


def test_empty_and_corrupt_ranges_publish_nothing(kafka_bootstrap: str, topic_names: TopicNames,
                                                  tmp_path: Path) -> None:
    imps, clicks = synthetic_log(50, seed=3)
    produce(kafka_bootstrap, topic_names, imps, clicks, garbage=20, garbage_time=T0 + 10 * 86_400_000)
    publish(kafka_bootstrap, topic_names.model_weights, [weights_record(small_net(0), 0, "MAJOR")])

    later = T0 + 5 * 86_400_000
    empty = run_range(kafka_bootstrap, topic_names, "m", later, later + 3_600_000, config(), tmp_path / "empty")
    assert empty["status"] == "EMPTY" and "no usable impression" in empty["reason"]
    other = run_range(kafka_bootstrap, topic_names, "nobody", T0, END, config(), tmp_path / "other")
    assert other["status"] == "EMPTY"

    bad_t = T0 + 10 * 86_400_000
    corrupt = run_range(kafka_bootstrap, topic_names, "m", bad_t, bad_t + 60_000, config(), tmp_path / "bad")
    assert corrupt["status"] == "CORRUPT"
    assert corrupt["input"]["corrupt_records"] == 20 and "20 of 20 records" in corrupt["reason"]
    assert corrupt["input"]["corrupt_samples"][0]["reason"].startswith("MALFORMED")
    assert [w["version"] for w in read_all(kafka_bootstrap, topic_names.model_weights)] == [0]


def test_follow_runs_one_update_per_trigger(kafka_bootstrap: str, topic_names: TopicNames,
                                            tmp_path: Path) -> None:
    imps, clicks = synthetic_log(N, seed=4)
    produce(kafka_bootstrap, topic_names, imps, clicks)
    publish(kafka_bootstrap, topic_names.model_weights, [weights_record(small_net(0), 0, "MAJOR")])
    p = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for tid, start, end in (("t-data", T0, END), ("t-empty", END + 86_400_000, END + 2 * 86_400_000)):
        trig = {"model_id": "m", "trigger_id": tid, "created_at": end, "reason": "SCHEDULE", "base_version": 0,
                "minor_updates_since_major": 2, "event_time_start": start, "event_time_end": end,
                "impression_offsets": [], "click_offsets": []}
        p.send(topic_names.major_update_triggers, key=b"m", value=serde.encode("MajorUpdateTrigger", trig))
    p.flush()
    p.close()
    reports: list[dict[str, Any]] = []
    n = follow_triggers(kafka_bootstrap, topic_names, config(steps=100), tmp_path, group_id=f"g-{topic_names.prefix}",
                        max_triggers=2, idle_timeout_s=30, on_report=reports.append)
    assert n == 2
    assert [(r["trigger"]["trigger_id"], r["status"]) for r in reports] == [("t-data", "PUBLISHED"),
                                                                            ("t-empty", "EMPTY")]
    assert (tmp_path / "m" / "t-data" / "report.json").exists()
    assert [w["version"] for w in read_all(kafka_bootstrap, topic_names.model_weights)] == [0, 1]
