"""`python -m drnflow.provision jars|data|crds`: fetch what the project needs besides PyPI packages, idempotently."""

from __future__ import annotations

import sys
import time


def fetch_jars() -> None:
    from operators.jars import flink_jars, kafka_libs

    t0 = time.monotonic()
    libs = kafka_libs()
    jars = flink_jars()
    from operators.jvm_jar import jvm_jar

    extra = f", {jvm_jar().name} (built from operators/jvm)"
    print(f"jars: kafka broker classpath in {libs}; {len(jars)} Flink connector jars{extra} "
          f"({time.monotonic() - t0:.1f} s)")


def fetch_data() -> None:
    t0 = time.monotonic()
    from drnflow.datasets import RANKEVAL, RECBOLE, ensure_archive

    fetched = [ensure_archive(RECBOLE).name, ensure_archive(RANKEVAL).name]
    print(f"data: {', '.join(fetched) or 'nothing to fetch'} ({time.monotonic() - t0:.1f} s)")


def fetch_crds() -> None:
    """The operators' CRD jars, so the deploy/k8s manifests validate offline (tests/unit/test_k8s_manifests.py)."""
    from drnflow.k8s_crds import fetch_all

    t0 = time.monotonic()
    jars = fetch_all()
    print(f"crds: {', '.join(j.name for j in jars)} ({time.monotonic() - t0:.1f} s)")


def main(argv: list[str]) -> int:
    steps = {"jars": fetch_jars, "data": fetch_data, "crds": fetch_crds}
    wanted = argv or list(steps)
    for name in wanted:
        if name not in steps:
            print(f"drnflow.provision: unknown step {name!r}; known: {', '.join(steps)}", file=sys.stderr)
            return 2
        try:
            steps[name]()
        except Exception as e:  # a fetch failure is one sentence for make, not a traceback
            print(f"drnflow.provision {name}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
