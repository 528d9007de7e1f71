"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) from Maven Central jars.

Everything it writes lives under `<state>/kafka/`: data, logs, server.properties, the pid file.
It listens on loopback only. With `secure=True` (`drnflow up --secure`) clients must authenticate with
SASL/SCRAM-SHA-512 as one of the principals of drnflow/stack/access.py, whose passwords are generated
when the storage is formatted; the controller listener takes the admin user over SASL/PLAIN (KRaft keeps
SCRAM credentials in the metadata log the controller itself serves), and the StandardAuthorizer denies
whatever no ACL allows.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from drnflow.stack import access, process
from operators import kafka_io
from operators.jars import SetupError, kafka_libs, require_tool
from operators.kafka_io.security import KafkaSecurity
from schemas.topics import TopicNames

SERVICE = "kafka"

LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


@dataclass(frozen=True)
class KafkaConfig:
    """How to run the local broker. Ports are loopback only."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap_mb: int = 512
    startup_timeout_s: float = 90.0
    extra_properties: dict[str, str] = field(default_factory=dict)
    #: SASL/SCRAM authentication and ACLs (see the module docstring).
    secure: bool = False

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"host {self.host!r}: the local broker listens on loopback only")
        for name in ("port", "controller_port"):
            value = getattr(self, name)
            if not 1 <= value <= 65535:
                raise ValueError(f"{name} must be a TCP port (1-65535), got {value}")
        if self.port == self.controller_port:
            raise ValueError(f"port and controller_port must differ, both are {self.port}")
        if self.heap_mb < 128:
            raise ValueError(f"heap_mb must be at least 128, got {self.heap_mb}")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str | None
    controller: str | None
    home: Path
    secure: bool = False


class KafkaBroker:
    """Start/stop/status of one broker whose files live in `<state>/kafka`."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.home = config.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.pid_file = self.home / "broker.pid"
        self.info_file = self.home / "broker.json"
        #: "secure" or "plaintext": how the storage was formatted (SCRAM users exist only if secure).
        self.mode_file = self.home / "security-mode"
        self.mark = process.marker(SERVICE, config.state_dir.resolve())

    # -- queries ---------------------------------------------------------------------------------
    def pid(self) -> int | None:
        if self.pid_file.exists():
            try:
                pid = int(self.pid_file.read_text().strip())
            except ValueError:
                pid = -1
            if pid > 0 and process.alive(pid) and self.mark in process.cmdline(pid):
                return pid
        found = process.find_marked(self.mark)
        return found[0] if found else None

    def status(self) -> BrokerStatus:
        pid = self.pid()
        info = self._info()
        if pid is None:
            return BrokerStatus(False, None, None, None, self.home)
        return BrokerStatus(True, pid, info.get("bootstrap"), info.get("controller"), self.home,
                            bool(info.get("secure", False)))

    def identity(self, principal: str = access.ADMIN) -> KafkaSecurity | None:
        """`principal`'s credentials on a secure broker (generated on first use); None when not secure."""
        if not self.config.secure:
            return None
        return access.ensure_credentials(self.home)[principal]

    def _admin_settings(self) -> dict[str, object]:
        admin = self.identity()
        return admin.kafka_python() if admin else {}

    def _info(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self.info_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> BrokerStatus:
        """Start the broker if it is not running, wait until it answers. Idempotent."""
        current = self.status()
        if current.running:
            return current
        java = require_tool("java", "to run the Kafka broker")
        cfg = self.config
        for port in (cfg.port, cfg.controller_port):
            if process.port_in_use(cfg.host, port):
                raise SetupError(
                    f"port {port} on {cfg.host} is already in use by another process; choose other ports "
                    f"with --kafka-port/--controller-port (or DRNFLOW_KAFKA_PORT)."
                )
        mode = "secure" if cfg.secure else "plaintext"
        formatted = (self.data_dir / "meta.properties").exists()
        if formatted and self.mode_file.exists() and self.mode_file.read_text().strip() != mode:
            raise SetupError(
                f"the broker in {self.home} was set up {self.mode_file.read_text().strip()}, not {mode}; "
                f"start it {'without' if cfg.secure else 'with'} --secure, or use another --state-dir "
                f"(or `drnflow down --purge` to delete its data)")
        libs = kafka_libs()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self._write_properties()
        log4j = self.home / "log4j2.properties"
        log4j.write_text(LOG4J2)
        classpath = f"{libs}/*"
        jvm = [
            java, f"-Xmx{cfg.heap_mb}m", f"-Xms{min(cfg.heap_mb, 256)}m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.logs_dir}", self.mark, "-cp", classpath,
        ]
        if not formatted:
            self._format(jvm, props)
            self.mode_file.write_text(mode + "\n")
        stdout = open(self.logs_dir / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(props)],
            stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        stdout.close()
        self.pid_file.write_text(str(proc.pid))
        self.info_file.write_text(json.dumps({
            "bootstrap": cfg.bootstrap, "controller": f"{cfg.host}:{cfg.controller_port}", "secure": cfg.secure,
        }))
        self._wait_ready(proc)
        return self.status()

    def _write_properties(self) -> Path:
        cfg = self.config
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{cfg.host}:{cfg.controller_port}",
            "listeners": f"PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{cfg.host}:{cfg.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Flink's transactional sink defaults to 1 h transactions; allow them (broker default 15 min).
            "transaction.max.timeout.ms": str(60 * 60 * 1000),
            "auto.create.topics.enable": "false",
            "log.retention.ms": "-1",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.cleaner.enable": "true",
            **(self._secure_properties() if cfg.secure else {}),
            **cfg.extra_properties,
        }
        path = self.home / "server.properties"
        path.unlink(missing_ok=True)
        # It holds the admin password when secure: readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _secure_properties(self) -> dict[str, str]:
        cfg = self.config
        admin = self.identity()
        assert admin is not None and admin.password is not None
        pw = admin.password
        return {
            "listeners": f"SASL_PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://{cfg.host}:{cfg.port}",
            "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": access.MECHANISM,
            "sasl.mechanism.inter.broker.protocol": access.MECHANISM,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{pw}";',
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="{pw}" '
                f'user_admin="{pw}";',
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{access.ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _format(self, jvm: list[str], props: Path) -> None:
        cluster_id = new_cluster_id()
        proc = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(props),
             *self._scram_users()],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise SetupError(f"formatting Kafka storage in {self.data_dir} failed: "
                             f"{(proc.stdout + proc.stderr).strip()[-800:]}")

    def _scram_users(self) -> list[str]:
        """`--add-scram` arguments of the storage tool: every principal, written with the metadata."""
        if not self.config.secure:
            return []
        out: list[str] = []
        for principal, who in access.ensure_credentials(self.home).items():
            out += ["--add-scram", f"{access.MECHANISM}=[name={principal},password={who.password}]"]
        return out

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        cfg = self.config
        deadline = time.monotonic() + cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SetupError(
                    f"the Kafka broker exited with code {proc.returncode} while starting; last log lines "
                    f"({self.logs_dir}):\n{process.log_tail(self.logs_dir / 'server.log')}\n"
                    f"{process.log_tail(self.logs_dir / 'stdout.log', 5)}"
                )
            if process.port_answers(cfg.host, cfg.port) and _metadata_ok(cfg.bootstrap, self._admin_settings()):
                return
            time.sleep(0.3)
        self.stop()
        raise SetupError(f"the Kafka broker did not answer on {cfg.bootstrap} within {cfg.startup_timeout_s:.0f} s; "
                         f"see {self.logs_dir / 'server.log'}")

    def stop(self, timeout_s: float = 30.0) -> list[int]:
        """Stop the processes this state dir started; returns their pids (empty if none ran)."""
        pids = sorted(set(process.find_marked(self.mark)) | ({p} if (p := self.pid()) else set()))
        if pids:
            process.terminate(pids, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return pids


def _metadata_ok(bootstrap: str, settings: dict[str, object]) -> bool:
    from kafka.errors import KafkaError

    try:
        admin = kafka_io.admin(bootstrap, "drnflow-ready-check", request_timeout_ms=3000, **settings)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


@dataclass(frozen=True)
class TopicSettings:
    """Topic creation settings. Retention defaults to forever: Kafka's time retention looks at record
    timestamps, which drnflow sets to event time, so logs with old event times (MovieLens is from
    1997, replays are from the past) would be deleted at once under a 7-day retention."""

    partitions: int = 1
    retention_ms: int = -1

    def __post_init__(self) -> None:
        if not 1 <= self.partitions <= 1000:
            raise ValueError(f"partitions must be in 1..1000, got {self.partitions}")
        if self.retention_ms < -1 or self.retention_ms == 0:
            raise ValueError(f"retention_ms must be -1 (forever) or > 0, got {self.retention_ms}")


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 url-safe base64 characters) that does not start with '-': the
    storage tool's argument parser would take such an id for an option (1 start in 64 failed so)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def create_topics(bootstrap: str, names: TopicNames, settings: TopicSettings | None = None,
                  identity: KafkaSecurity | None = None) -> list[str]:
    """Create the six topics of design.md §2 (existing ones are kept); returns the names created.
    `identity` (default: the process's, DRNFLOW_KAFKA_CONFIG) must be allowed to create topics."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    settings = settings or TopicSettings()
    admin = kafka_io.admin(bootstrap, "drnflow-admin", request_timeout_ms=15000,
                           **(identity.kafka_python() if identity else {}))
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in names.all() if t not in existing]
        new = []
        for topic in wanted:
            config = {"retention.ms": str(settings.retention_ms), "retention.bytes": "-1"}
            if topic == names.model_weights:
                # Weights are the source of truth for models: keep every version (replay rebuilds from it).
                config["retention.ms"] = "-1"
            new.append(NewTopic(topic, num_partitions=settings.partitions, replication_factor=1,
                                topic_configs=config))
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return wanted
    finally:
        admin.close()
