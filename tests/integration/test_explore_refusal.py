"""End to end on the real broker: a job or a ranker started with explore parameters that disagree with the
served version refuses to start, with one sentence, before anything is written."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from drnflow.stack.kafka import create_topics
from models.initial_model import initial_drn_record
from models.perturbation import ExploreParams
from operators.paths import PROJECT_ROOT
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import publish, read_committed

pytestmark = pytest.mark.integration


def test_minor_update_and_simulate_refuse_an_alpha_the_served_version_does_not_have(kafka_bootstrap: str) -> None:
    names = TopicNames(f"ex{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    major = initial_drn_record("drn", 4, 3, seed=1, created_at=0, explore=ExploreParams(0.1))
    publish(kafka_bootstrap, names.model_weights, [(b"drn", serde.encode("ModelWeights", major))])

    job = subprocess.run(
        [sys.executable, "-m", "jobs.minor_update", "--bounded", "--bootstrap", kafka_bootstrap,
         "--topic-prefix", names.prefix, "--alpha", "0.3"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert job.returncode == 2, job.stdout + job.stderr
    lines = [ln for ln in job.stderr.strip().splitlines() if ln.startswith("minor-update:")]
    assert lines == [
        f"minor-update: model drn v1 on {names.model_weights} explores with alpha 0.1, multiplicative, but this "
        "job was started with alpha 0.3, multiplicative; drop --alpha/--perturbation to follow the served "
        "version, or publish a version with these"
    ]

    sim = subprocess.run(
        [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", kafka_bootstrap, "--topic-prefix",
         names.prefix, "--policy", "drn", "--model-id", "drn", "--alpha", "0.3", "--impressions", "5",
         "--no-progress", "--weights-timeout", "20"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert sim.returncode != 0
    assert "explores with alpha 0.1, multiplicative, but --alpha/--perturbation say alpha 0.3" in sim.stderr
    assert read_committed(kafka_bootstrap, names.impressions) == [], "a refused start writes nothing"
    assert [serde.decode("ModelWeights", r.value)["version"]
            for r in read_committed(kafka_bootstrap, names.model_weights)] == [1]


def test_simulate_publishes_a_first_drn_version_carrying_its_explore_parameters(kafka_bootstrap: str) -> None:
    names = TopicNames(f"ex{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    sim = subprocess.run(
        [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", kafka_bootstrap, "--topic-prefix",
         names.prefix, "--policy", "drn", "--model-id", "drn", "--publish-initial", "--alpha", "0.2",
         "--impressions", "5", "--no-progress"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert sim.returncode == 0, sim.stderr
    assert "published initial MAJOR 'drn' v1" in sim.stdout
    weights = [serde.decode("ModelWeights", r.value) for r in read_committed(kafka_bootstrap, names.model_weights)]
    assert [(w["model_id"], w["kind"], w["version"]) for w in weights] == [("drn", "MAJOR", 1)]
    assert ExploreParams.read_from(weights[0]["architecture"]) == ExploreParams(0.2)
    impressions = [serde.decode("Impression", r.value) for r in read_committed(kafka_bootstrap, names.impressions)]
    assert len(impressions) == 5 and {i["model_version"] for i in impressions} == {1}
