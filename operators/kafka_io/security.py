"""Who a drnflow client is to the broker: SASL credentials from a file or the environment.

Credentials never travel on the command line (they would show in `ps` and shell history):

- `DRNFLOW_KAFKA_CONFIG` names a client properties file in Kafka's own format, the file
  `kafka-console-producer --producer.config` takes: `security.protocol`, `sasl.mechanism`, and either
  `sasl.username` + `sasl.password` (librdkafka's keys) or a `sasl.jaas.config` line (Java's).
  `drnflow up --secure` writes one such file per principal, readable by its owner only.
- `DRNFLOW_KAFKA_USERNAME` / `DRNFLOW_KAFKA_PASSWORD` set or override the user and password;
  `DRNFLOW_KAFKA_SASL_MECHANISM` (default SCRAM-SHA-512) and `DRNFLOW_KAFKA_SECURITY_PROTOCOL`
  (default SASL_PLAINTEXT once a user is set) the rest.

One `KafkaSecurity` renders itself for each client library drnflow uses: kafka-python, librdkafka
(confluent-kafka) and the Java clients inside Flink's Kafka connector.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "DRNFLOW_KAFKA_CONFIG"
USERNAME_ENV = "DRNFLOW_KAFKA_USERNAME"
PASSWORD_ENV = "DRNFLOW_KAFKA_PASSWORD"
MECHANISM_ENV = "DRNFLOW_KAFKA_SASL_MECHANISM"
PROTOCOL_ENV = "DRNFLOW_KAFKA_SECURITY_PROTOCOL"

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
#: Keys a client properties file may hold; anything else is refused rather than ignored.
KNOWN_KEYS = ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "sasl.jaas.config")

_LOGIN_MODULES = {
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
}
#: flink-sql-connector-kafka relocates kafka-clients under this package, login modules included.
FLINK_SHADED_PREFIX = "org.apache.flink.kafka.shaded."


@dataclass(frozen=True)
class KafkaSecurity:
    """PLAINTEXT (no authentication) or SASL_PLAINTEXT with a user and password. SSL is not offered:
    the broker drnflow starts listens on loopback only; a remote broker with TLS needs it (issue 16)."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"security.protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "PLAINTEXT":
            if self.username or self.password:
                raise ValueError("a Kafka user and password need security.protocol=SASL_PLAINTEXT, not PLAINTEXT")
            return
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"sasl.mechanism must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}")
        if not self.username or self.password is None:
            raise ValueError(f"{self.protocol} needs a user and a password (sasl.username/sasl.password in "
                             f"${CONFIG_ENV}, or ${USERNAME_ENV}/${PASSWORD_ENV})")

    @property
    def authenticated(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments of kafka-python's clients."""
        if not self.authenticated:
            return {}
        return {"security_protocol": self.protocol, "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username, "sasl_plain_password": self.password}

    def librdkafka(self) -> dict[str, str]:
        """Settings of confluent-kafka's clients."""
        if not self.authenticated:
            return {}
        assert self.mechanism and self.username and self.password is not None
        return {"security.protocol": self.protocol, "sasl.mechanism": self.mechanism,
                "sasl.username": self.username, "sasl.password": self.password}

    def java(self, class_prefix: str = "") -> dict[str, str]:
        """Properties of the Java clients; `class_prefix` is FLINK_SHADED_PREFIX inside Flink's connector."""
        if not self.authenticated:
            return {}
        assert self.mechanism and self.username and self.password is not None
        module = class_prefix + _LOGIN_MODULES[self.mechanism]
        jaas = f'{module} required username="{_jaas_quote(self.username)}" password="{_jaas_quote(self.password)}";'
        return {"security.protocol": self.protocol, "sasl.mechanism": self.mechanism, "sasl.jaas.config": jaas}

    def properties_text(self) -> str:
        """This identity as a client properties file (the format `from_properties` reads)."""
        lines = [f"security.protocol={self.protocol}"]
        if self.authenticated:
            lines += [f"sasl.mechanism={self.mechanism}", f"sasl.username={self.username}",
                      f"sasl.password={self.password}"]
        return "".join(line + "\n" for line in lines)


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties lines (`key=value` or `key: value`; `#` and `!` start comments)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if not m:
            raise ValueError(f"not a key=value line: {line!r}")
        out[m.group(1)] = m.group(2).strip()
    return out


def from_properties(props: Mapping[str, str]) -> KafkaSecurity:
    unknown = sorted(set(props) - set(KNOWN_KEYS))
    if unknown:
        raise ValueError(f"unsupported Kafka client setting(s) {', '.join(unknown)}; drnflow reads only "
                         f"{', '.join(KNOWN_KEYS)}")
    username, password = props.get("sasl.username"), props.get("sasl.password")
    jaas = props.get("sasl.jaas.config")
    if jaas:
        options = {k: re.sub(r"\\(.)", r"\1", v) for k, v in _JAAS_OPTION.findall(jaas)}
        username = username or options.get("username")
        password = password if password is not None else options.get("password")
    protocol = props.get("security.protocol", "SASL_PLAINTEXT" if username else "PLAINTEXT")
    mechanism = props.get("sasl.mechanism", "SCRAM-SHA-512" if protocol != "PLAINTEXT" else None)
    return KafkaSecurity(protocol=protocol, mechanism=mechanism, username=username, password=password)


def read_client_config(path: Path) -> KafkaSecurity:
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read Kafka client config {path} (${CONFIG_ENV}): {e.strerror}") from None
    try:
        return from_properties(parse_properties(text))
    except ValueError as e:
        raise ValueError(f"Kafka client config {path}: {e}") from None


def from_environment(environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The identity this process uses for every Kafka client: ${CONFIG_ENV}, then the variables over it."""
    env = os.environ if environ is None else environ
    props: dict[str, str] = {}
    if env.get(CONFIG_ENV):
        base = read_client_config(Path(env[CONFIG_ENV]).expanduser())
        props = parse_properties(base.properties_text())
    for var, key in ((USERNAME_ENV, "sasl.username"), (PASSWORD_ENV, "sasl.password"),
                     (MECHANISM_ENV, "sasl.mechanism"), (PROTOCOL_ENV, "security.protocol")):
        if env.get(var):
            props[key] = env[var]
    if "sasl.username" in props and props.get("security.protocol") == "PLAINTEXT" and not env.get(PROTOCOL_ENV):
        props["security.protocol"] = "SASL_PLAINTEXT"
    try:
        return from_properties(props)
    except ValueError as e:
        raise ValueError(f"Kafka credentials from the environment: {e}") from None


def write_client_config(path: Path, security: KafkaSecurity) -> Path:
    """Write `security` as a properties file only its owner can read (it holds a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as f:
        f.write(security.properties_text())
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path
