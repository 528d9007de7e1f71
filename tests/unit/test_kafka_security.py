"""Kafka credentials from a client properties file or the environment (operators/kafka_io/security.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from operators.kafka_io.security import (
    CONFIG_ENV,
    FLINK_SHADED_PREFIX,
    PASSWORD_ENV,
    USERNAME_ENV,
    KafkaSecurity,
    from_environment,
    from_properties,
    parse_properties,
    read_client_config,
    write_client_config,
)


def test_no_configuration_means_plaintext_and_no_client_settings() -> None:
    plain = from_environment({})
    assert plain == KafkaSecurity()
    assert plain.kafka_python() == {} and plain.librdkafka() == {} and plain.java() == {}


def test_a_properties_file_in_kafkas_format_is_read_with_comments_and_both_separators() -> None:
    props = parse_properties("# job\n! also a comment\nsecurity.protocol = SASL_PLAINTEXT\n"
                             "sasl.mechanism: SCRAM-SHA-512\nsasl.username=job\nsasl.password=s3=cr:et\n")
    assert props["sasl.password"] == "s3=cr:et"
    sec = from_properties(props)
    assert (sec.protocol, sec.mechanism, sec.username, sec.password) == ("SASL_PLAINTEXT", "SCRAM-SHA-512", "job",
                                                                          "s3=cr:et")


def test_a_user_alone_implies_sasl_plaintext_and_scram_sha_512() -> None:
    sec = from_properties({"sasl.username": "u", "sasl.password": "p"})
    assert (sec.protocol, sec.mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")


def test_a_java_jaas_line_gives_the_user_and_password_with_escapes_undone() -> None:
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required username="ranker" '
            'password="a\\"b\\\\c";')
    sec = from_properties({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                           "sasl.jaas.config": jaas})
    assert (sec.username, sec.password, sec.mechanism) == ("ranker", 'a"b\\c', "SCRAM-SHA-256")
    # And back: the Java rendering quotes it so that a JAAS parser reads the same password.
    again = from_properties({"sasl.mechanism": "SCRAM-SHA-256", "security.protocol": "SASL_PLAINTEXT",
                             "sasl.jaas.config": sec.java()["sasl.jaas.config"]})
    assert again == sec


def test_each_client_library_gets_its_own_names() -> None:
    sec = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "job", "pw")
    assert sec.kafka_python() == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                  "sasl_plain_username": "job", "sasl_plain_password": "pw"}
    assert sec.librdkafka() == {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                                "sasl.username": "job", "sasl.password": "pw"}
    java = sec.java(FLINK_SHADED_PREFIX)
    assert java["sasl.jaas.config"] == (f"{FLINK_SHADED_PREFIX}org.apache.kafka.common.security.scram.ScramLoginModule"
                                        ' required username="job" password="pw";')
    assert "pw" not in repr(sec), "a password must not show in logs of the config object"


@pytest.mark.parametrize(("props", "message"), [
    ({"security.protocol": "SSL"}, "security.protocol must be one of"),
    ({"security.protocol": "PLAINTEXT", "sasl.username": "u", "sasl.password": "p"}, "need security.protocol"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI", "sasl.username": "u",
      "sasl.password": "p"}, "sasl.mechanism must be one of"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.username": "u"}, "needs a user and a password"),
    ({"sasl.username": "u", "sasl.password": "p", "ssl.truststore.location": "/x"}, "unsupported Kafka client"),
])
def test_a_configuration_that_cannot_work_is_refused_with_the_reason(props: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_properties(props)


def test_the_environment_overrides_the_file_and_the_file_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = write_client_config(tmp_path / "creds" / "job.properties",
                               KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "job", "from-file"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_client_config(path).password == "from-file"
    assert from_environment({CONFIG_ENV: str(path)}).password == "from-file"
    over = from_environment({CONFIG_ENV: str(path), PASSWORD_ENV: "from-env", USERNAME_ENV: "other"})
    assert (over.username, over.password) == ("other", "from-env")
    assert from_environment({USERNAME_ENV: "u", PASSWORD_ENV: "p"}).protocol == "SASL_PLAINTEXT"


def test_a_missing_or_broken_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read Kafka client config .*nope\.properties"):
        from_environment({CONFIG_ENV: str(tmp_path / "nope.properties")})
    bad = tmp_path / "bad.properties"
    bad.write_text("just words\n")
    with pytest.raises(ValueError, match=r"bad\.properties: not a key=value line"):
        read_client_config(bad)
