"""deploy/k8s/ against the pinned operators' CRD schemas, the project's topic names and its ACLs.

A manifest that no cluster has seen is checked here against the same schemas the operators install, so
a misspelt field or a wrong type fails `make test` rather than `kubectl apply` on someone's cluster.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from drnflow.k8s_crds import FLINK_OPERATOR, CrdFetchError, CrdSchema, load_schemas, validate
from drnflow.stack.access import Grant, grants
from operators.jars import FLINK_VERSION, KAFKA_VERSION
from operators.paths import PROJECT_ROOT
from schemas.topics import TOPIC_SCHEMAS, TopicNames

K8S = PROJECT_ROOT / "deploy" / "k8s"
DESIGN = PROJECT_ROOT / "docs" / "design.md"
#: Core kinds have no CRD; the API server's own schema is not pinned here, so only their shape is checked.
CORE_KINDS = {("v1", "Namespace"), ("v1", "PersistentVolumeClaim")}
#: Strimzi's resource types -> drnflow.stack.access's.
RESOURCE_TYPES = {"topic": "TOPIC", "group": "GROUP", "transactionalId": "TRANSACTIONAL_ID"}


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], CrdSchema]:
    try:
        return load_schemas()
    except CrdFetchError as e:
        if e.offline:
            pytest.skip(f"offline: the pinned CRD jars are not cached and Maven Central is unreachable ({e})")
        raise


def kustomized_files() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_documents() -> list[dict[str, Any]]:
    return [d for path in kustomized_files() for d in documents(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in all_documents() if d["kind"] == kind]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = {p.name for p in kustomized_files()}
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", *kustomization["configurations"]}
    assert listed == present
    # The image kustomize rewrites is the one the FlinkDeployment names, at a path kustomize is told of.
    (image,) = kustomization["images"]
    assert of_kind("FlinkDeployment")[0]["spec"]["image"].split(":")[0] == image["name"]
    config = yaml.safe_load((K8S / kustomization["configurations"][0]).read_text())
    assert {"path": "spec/image", "kind": "FlinkDeployment"} in config["images"]


def test_every_manifest_validates_against_its_crd(schemas: dict[tuple[str, str], CrdSchema]) -> None:
    checked = set()
    for doc in all_documents():
        key = (doc["apiVersion"], doc["kind"])
        if key in CORE_KINDS:
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
            continue
        assert validate(doc, schemas) == [], f"{doc['kind']} {doc['metadata']['name']}"
        checked.add(doc["kind"])
    assert checked == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "FlinkDeployment"}


@pytest.mark.parametrize(("kind", "breaks"), [
    ("KafkaTopic", lambda d: d["spec"].__setitem__("partitions", "three")),  # wrong type
    ("KafkaNodePool", lambda d: d["spec"].pop("roles")),  # a required field left out
    ("Kafka", lambda d: d["spec"]["kafka"]["listeners"][0].pop("tls")),  # a required field of a list item
    ("KafkaUser", lambda d: d["spec"]["authorization"]["acls"][0].__setitem__("operations", ["Reed"])),  # enum
    ("FlinkDeployment", lambda d: d["spec"]["taskManager"].__setitem__("replicas", "two")),  # wrong type
    ("FlinkDeployment", lambda d: d["spec"].__setitem__("jobManger", {})),  # unknown (misspelt) field
    ("FlinkDeployment", lambda d: d["spec"]["flinkConfiguration"].__setitem__("parallelism.default", 2)),
    ("FlinkDeployment", lambda d: d.__setitem__("apiVersion", "flink.apache.org/v1")),  # no such version
    ("KafkaTopic", lambda d: d["metadata"].pop("name")),
])
def test_a_broken_manifest_is_refused(schemas: dict[tuple[str, str], CrdSchema], kind: str, breaks: Any) -> None:
    doc = copy.deepcopy(of_kind(kind)[0])
    assert validate(doc, schemas) == []
    breaks(doc)
    assert validate(doc, schemas) != []


def test_the_pinned_operator_has_no_flink_2_value(schemas: dict[tuple[str, str], CrdSchema]) -> None:
    """The known gap of flink-deployment.yaml: the newest pinnable operator API (1.10.0) knows up to v1_20.
    When this fails, a pinned operator accepts v2_2: set it in the manifest and drop the gap's comment."""
    doc = copy.deepcopy(of_kind("FlinkDeployment")[0])
    assert doc["spec"]["flinkVersion"] == "v1_20"
    doc["spec"]["flinkVersion"] = "v2_2"
    assert validate(doc, schemas), f"{FLINK_OPERATOR.coordinates} now accepts v2_2"


def test_topics_are_the_projects_topic_names() -> None:
    topics = of_kind("KafkaTopic")
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(TopicNames().all())
    assert sorted(t["metadata"]["name"] for t in topics) == sorted(TOPIC_SCHEMAS)
    for topic in topics:  # design.md §2: time retention off
        assert str(topic["spec"]["config"]["retention.ms"]) == "-1"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == of_kind("Kafka")[0]["metadata"]["name"]


def user_grants() -> set[Grant]:
    out = set()
    for user in of_kind("KafkaUser"):
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl.get("type", "allow") == "allow"
            assert acl["resource"].get("patternType", "literal") == "literal"
            for op in acl["operations"]:
                out.add(Grant(user["metadata"]["name"], op.upper(), RESOURCE_TYPES[acl["resource"]["type"]],
                              acl["resource"]["name"]))
    return out


def test_user_acls_are_those_of_drnflow_up_secure() -> None:
    assert user_grants() == set(grants(TopicNames()))


def _design_topics(phrase: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z-]+", phrase.replace(" and ", ", "))) & set(TOPIC_SCHEMAS)


def test_user_acls_match_design_md() -> None:
    """design.md §6 lists job's and ranker's topics in words; monitor reads every topic and writes none."""
    text = " ".join(DESIGN.read_text().split())
    topic_grants = {g for g in user_grants() if g.resource == "TOPIC"}
    for principal in ("job", "ranker"):
        m = re.search(rf"`{principal}` \(reads ([^;]*?)[;,] writes ([^)]*)\)", text)
        assert m, f"design.md no longer says what `{principal}` reads and writes"
        assert {g.name for g in topic_grants if g.principal == principal and g.operation == "READ"} == \
            _design_topics(m.group(1))
        assert {g.name for g in topic_grants if g.principal == principal and g.operation == "WRITE"} == \
            _design_topics(m.group(2))
    assert "`monitor` (reads every topic, writes none)" in text
    assert {g.name for g in topic_grants if g.principal == "monitor" and g.operation == "READ"} == set(TOPIC_SCHEMAS)
    assert not {g for g in topic_grants if g.principal == "monitor" and g.operation == "WRITE"}


def test_flink_deployment_runs_the_job_as_the_job_user() -> None:
    from jobs.minor_update import make_parser

    fd = of_kind("FlinkDeployment")[0]["spec"]
    args = fd["job"]["args"]
    assert args[:2] == ["-pym", "jobs.minor_update"]
    parsed = make_parser().parse_args(args[2:])  # every flag is one the job knows
    assert parsed.parallelism == fd["job"]["parallelism"]
    assert fd["job"]["jarURI"] == f"local:///opt/flink/opt/flink-python-{FLINK_VERSION}.jar"
    conf = fd["flinkConfiguration"]
    assert conf["execution.checkpointing.dir"] == f"file://{parsed.checkpoint_dir}"
    assert conf["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    env = {e["name"]: e for e in fd["podTemplate"]["spec"]["containers"][0]["env"]}
    assert env["DRNFLOW_KAFKA_USERNAME"]["value"] == "job"
    assert env["DRNFLOW_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "job", "key": "password"}
    kafka = of_kind("Kafka")[0]
    assert env["DRNFLOW_BOOTSTRAP"]["value"] == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    assert kafka["spec"]["kafka"]["version"] == KAFKA_VERSION
    mounts = {m["mountPath"] for m in fd["podTemplate"]["spec"]["containers"][0]["volumeMounts"]}
    assert any(parsed.checkpoint_dir.startswith(m + "/") for m in mounts)


def test_flink_deployment_logs_as_the_local_clusters_do() -> None:
    """The operator replaces Flink's log4j-console.properties with the manifest's: Flink's own file of the
    pinned release plus the filters the local clusters get (operators/flink_logging.py)."""
    from drnflow.stack.flink import flink_home
    from operators.flink_logging import with_quiet_flink

    logging = of_kind("FlinkDeployment")[0]["spec"]["logConfiguration"]
    wheel = (flink_home() / "conf" / "log4j-console.properties").read_text()
    assert logging == {"log4j-console.properties": with_quiet_flink(wheel)}


def test_dockerfile_builds_on_the_pinned_flink_and_python() -> None:
    text = (K8S / "Dockerfile").read_text()
    assert re.search(rf"^ARG FLINK_IMAGE=flink:{re.escape(FLINK_VERSION)}-java17$", text, re.M)
    assert re.findall(r"^FROM\s+(\S+)", text, re.M)[0] == "${FLINK_IMAGE}"
    assert re.search(r"^ARG PYTHON_VERSION=3\.11\.\d+$", text, re.M)
    assert "flink_jars(); jvm_jar()" in text  # the job's jars are in the image, not fetched at start


def _fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("DRNFLOW_CACHE", str(tmp_path / "cache"))


def test_an_unreachable_registry_is_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this case may skip the schema tests; anything else about the jars fails them."""
    from drnflow.k8s_crds import crd_jar

    _fake_mvn(tmp_path, monkeypatch, "echo '[ERROR] Could not transfer artifact x: Unknown host'; exit 1\n")
    with pytest.raises(CrdFetchError) as e:
        crd_jar(FLINK_OPERATOR)
    assert e.value.offline


def test_a_jar_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drnflow.k8s_crds import crd_jar

    # Writes a jar where Maven would (the -DoutputDirectory= argument), with the wrong bytes.
    _fake_mvn(tmp_path, monkeypatch, 'for a in "$@"; do case "$a" in -DoutputDirectory=*) d="${a#*=}";; esac; done\n'
                                     f'echo not-a-jar > "$d/{FLINK_OPERATOR.filename}"\n')
    with pytest.raises(CrdFetchError, match="sha256") as e:
        crd_jar(FLINK_OPERATOR)
    assert not e.value.offline
    assert not (tmp_path / "cache" / "crds" / FLINK_OPERATOR.filename).exists()


def test_kustomize_build_validates_too(schemas: dict[tuple[str, str], CrdSchema], tmp_path: Path) -> None:
    """What `kubectl apply -k` sends: namespace and labels set, the image rewritten to the registry's."""
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (apt-get install kubectl); the files themselves are checked above")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    text = (tree / "kustomization.yaml").read_text()
    (tree / "kustomization.yaml").write_text(text.replace("    newTag:", "    newName: registry.invalid/drnflow-job\n"
                                                                          "    newTag:"))
    built = subprocess.run([kubectl, "kustomize", str(tree)], capture_output=True, text=True, timeout=60, check=True)
    docs = [d for d in yaml.safe_load_all(built.stdout) if d is not None]
    assert len(docs) == len(all_documents())
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "drnflow"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "drnflow"
        if (doc["apiVersion"], doc["kind"]) not in CORE_KINDS:
            assert validate(doc, schemas) == [], f"{doc['kind']} {doc['metadata']['name']}"
    (fd,) = [d for d in docs if d["kind"] == "FlinkDeployment"]
    assert fd["spec"]["image"] == "registry.invalid/drnflow-job:0.1.0"
