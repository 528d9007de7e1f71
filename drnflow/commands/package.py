"""`drnflow package`: build the folder `drnflow submit --package` ships to a cluster on another machine."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_package(args: argparse.Namespace) -> int:
    from drnflow.tools.package import PackageConfig, build

    pip_args: tuple[str, ...] = ()
    if args.wheelhouse is not None:
        pip_args = ("--no-index", "--find-links", str(Path(args.wheelhouse).resolve()))
    pkg = build(PackageConfig(out=Path(args.out), python_prefix=args.python_prefix, with_torch=args.with_torch,
                              pip_args=pip_args, force=args.force))
    print(f"submit  drnflow submit minor-update --package {pkg.root} --jobmanager HOST:PORT <job flags>")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "package", help="build a self-contained job package for a remote Flink cluster",
        description="Build a folder with everything a Flink cluster on another machine needs to run drnflow's "
                    "jobs: the project's code (job.zip), the connector jars and drnflow-jvm.jar (cache/), and a "
                    "virtual environment with the job's runtime dependencies packed by venv-pack "
                    "(python-env.tar.gz), plus manifest.json. `drnflow submit JOB --package DIR` ships it with "
                    "`flink run -pyfs/-pyarch/-pyexec`. The cluster needs only Flink and a Python of this "
                    "version at --python-prefix. torch is left out unless --with-torch: the DBGD job does not "
                    "need it; PDGD, and a model without a first version, do.")
    p.add_argument("--out", default=os.environ.get("DRNFLOW_PACKAGE", "dist/drnflow-job"), metavar="DIR",
                   help="the folder to build (env DRNFLOW_PACKAGE; default %(default)s)")
    p.add_argument("--python-prefix", default=None, metavar="PATH",
                   help="prefix of the cluster's Python 3.11 (e.g. /usr/local in deploy/k8s/Dockerfile's image; "
                        "default: this interpreter's base prefix)")
    p.add_argument("--with-torch", action="store_true",
                   help="also pack torch (about 3 GB with its CUDA libraries), for --learner pdgd")
    p.add_argument("--wheelhouse", default=None, metavar="DIR",
                   help="install the environment's packages from this folder of wheels only (no package index)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_package)
