"""The operators' CRD schemas that deploy/k8s/ is checked against, so `make test` validates it offline.

Only a cluster with the operators installed would otherwise tell a misspelt field from a right one.
The schemas come from the operators' own API jars on Maven Central, pinned by version and sha256 and
cached under the cache dir like the project's other jars. Validation is stricter than a plain
JSON-schema check in one way a cluster is too (`kubectl apply` rejects unknown fields): an object
that lists its properties takes no others unless the CRD says `x-kubernetes-preserve-unknown-fields`.
CEL rules (`x-kubernetes-validations`) are not evaluated.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.jars import SetupError, require_tool
from operators.paths import cache_dir


@dataclass(frozen=True)
class CrdJar:
    """A jar that carries CustomResourceDefinitions: Maven coordinates, its sha256, the CRD files in it."""

    group: str
    artifact: str
    version: str
    classifier: str
    sha256: str
    crds: tuple[str, ...]

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.jar"

    @property
    def coordinates(self) -> str:
        tail = f":jar:{self.classifier}" if self.classifier else ":jar"
        return f"{self.group}:{self.artifact}:{self.version}{tail}"


#: Strimzi's CRDs (kafka.strimzi.io/v1) ship in the test jar of its api module.
STRIMZI = CrdJar(
    "io.strimzi", "api", "0.51.0", "tests",
    "b99f69303dc507ca505b74345d93f5260621bb084b8b79447f726e54b6e66a1d",
    ("crds/v1/040-Crd-kafka.yaml", "crds/v1/045-Crd-kafkanodepool.yaml", "crds/v1/043-Crd-kafkatopic.yaml",
     "crds/v1/044-Crd-kafkauser.yaml"),
)
#: The newest flink-kubernetes-operator-api the registry serves here; its flinkVersion enum ends at v1_20
#: (deploy/k8s/flink-deployment.yaml says what that means for Flink 2.2).
FLINK_OPERATOR = CrdJar(
    "org.apache.flink", "flink-kubernetes-operator-api", "1.10.0", "",
    "b1f44814e17514fa8395c61b329a3ee9087123a5bda5b21fe1a495d5182c30b6",
    ("META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml",),
)
PINNED = (STRIMZI, FLINK_OPERATOR)

#: Words in Maven's output that mean the registry could not be reached (not: it answered "no such artifact").
_OFFLINE_WORDS = ("Could not transfer", "UnknownHost", "Unknown host", "Connection refused", "Network is unreachable",
                  "timed out", "No route to host", "Temporary failure in name resolution")


class CrdFetchError(SetupError):
    """The pinned jar could not be had; `offline` when the registry was unreachable rather than wrong."""

    def __init__(self, message: str, offline: bool) -> None:
        super().__init__(message)
        self.offline = offline


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crd_jar(pin: CrdJar) -> Path:
    """The pinned jar in the cache, fetched with Maven the first time; a jar whose sha256 differs is refused."""
    folder = cache_dir() / "crds"
    jar = folder / pin.filename
    if not (jar.exists() and _sha256(jar) == pin.sha256):
        mvn = require_tool("mvn", "to fetch the operators' CRD jars from Maven Central")
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={pin.coordinates}", f"-DoutputDirectory={folder}",
               "-Dmdep.overWriteReleases=true"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
        out = proc.stdout + proc.stderr
        if proc.returncode != 0 or not jar.exists():
            tail = "\n".join(out.strip().splitlines()[-3:])
            raise CrdFetchError(f"Maven could not fetch {pin.coordinates}:\n{tail}",
                                offline=any(w in out for w in _OFFLINE_WORDS))
        got = _sha256(jar)
        if got != pin.sha256:
            jar.unlink()
            raise CrdFetchError(f"{pin.coordinates} has sha256 {got}, pinned {pin.sha256}", offline=False)
    return jar


def _crd_documents(pin: CrdJar) -> Iterator[dict[str, Any]]:
    import yaml

    with zipfile.ZipFile(crd_jar(pin)) as z:
        for name in pin.crds:
            yield yaml.safe_load(z.read(name))


@dataclass(frozen=True)
class CrdSchema:
    """One served version of one CRD: what `apiVersion`/`kind` a manifest needs and the schema it must meet."""

    api_version: str
    kind: str
    schema: dict[str, Any]
    source: str


def load_schemas(pins: tuple[CrdJar, ...] = PINNED) -> dict[tuple[str, str], CrdSchema]:
    """(apiVersion, kind) -> its schema, for every served version of every pinned CRD."""
    out: dict[tuple[str, str], CrdSchema] = {}
    for pin in pins:
        for crd in _crd_documents(pin):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                api_version = f"{group}/{version['name']}"
                out[(api_version, kind)] = CrdSchema(api_version, kind, version["schema"]["openAPIV3Schema"],
                                                     f"{pin.coordinates} {crd['metadata']['name']}")
    return out


#: What the API server itself checks of every object's metadata.
_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def strict(schema: Any) -> Any:
    """`schema` with unknown properties refused, as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) if k in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not") else v
           for k, v in schema.items()}
    if "properties" in schema:
        out["properties"] = {name: strict(s) for name, s in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if schema.get("nullable"):
        out = {"anyOf": [{"type": "null"}, out]}
    return out


def manifest_schema(crd: CrdSchema) -> dict[str, Any]:
    """The whole object's schema: the CRD's, its apiVersion and kind fixed, metadata as the API server wants."""
    schema = strict(crd.schema)
    props = dict(schema.get("properties", {}))
    props["apiVersion"] = {"enum": [crd.api_version]}
    props["kind"] = {"enum": [crd.kind]}
    props["metadata"] = _OBJECT_META
    return {**schema, "properties": props, "required": sorted({*schema.get("required", []), "apiVersion", "kind",
                                                                  "metadata"})}


def validate(doc: dict[str, Any], schemas: dict[tuple[str, str], CrdSchema]) -> list[str]:
    """Every way `doc` breaks its CRD, one line each ('path: message'); [] when it is valid."""
    import jsonschema

    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    crd = schemas.get(key)
    if crd is None:
        return [f"no pinned CRD serves apiVersion {key[0]!r} kind {key[1]!r}"]
    validator = jsonschema.Draft4Validator(manifest_schema(crd))
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(doc))


def fetch_all() -> list[Path]:
    """Every pinned CRD jar in the cache (`python -m drnflow.provision crds`)."""
    return [crd_jar(pin) for pin in PINNED]
