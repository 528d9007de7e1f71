"""drnflow.toml: flags > environment > file > defaults; unknown keys and tables are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from drnflow import config_file
from drnflow.cli import main, make_parser
from drnflow.errors import CommandError

TOML = """
bootstrap = "127.0.0.1:19092"
prefix = "team."

[simulate]
impressions = 77
click-model = "pbm"

[model.init]
alpha = 0.05
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*config_file.ENV_KEYS.values(), config_file.ENV_CONFIG]:
        # set, then delete: monkeypatch records the variable and removes what the code under test sets
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def parse(path: Path, argv: list[str]) -> object:
    found, rest = config_file.config_path(["--config", str(path), *argv])
    assert found == path
    config = config_file.load(path)
    config_file.apply_environment(config, path)
    parser = make_parser()
    config_file.apply_command_defaults(parser, config, path)
    return parser.parse_args(rest)


def test_file_gives_defaults_and_flags_override(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "drnflow.toml"
    path.write_text(TOML)
    args = parse(path, ["simulate"])
    assert (args.impressions, args.click_model) == (77, "pbm")  # type: ignore[attr-defined]
    assert (args.bootstrap, args.topic_prefix) == ("127.0.0.1:19092", "team.")  # type: ignore[attr-defined]
    args = parse(path, ["simulate", "--impressions", "5", "--prefix", "mine."])
    assert (args.impressions, args.topic_prefix) == (5, "mine.")  # type: ignore[attr-defined]
    args = parse(path, ["model", "init", "drn"])
    assert args.alpha == 0.05  # type: ignore[attr-defined]


def test_the_environment_wins_over_the_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "drnflow.toml"
    path.write_text(TOML)
    clean_env.setenv("DRNFLOW_BOOTSTRAP", "127.0.0.1:29092")
    args = parse(path, ["monitor"])
    assert args.bootstrap == "127.0.0.1:29092"  # type: ignore[attr-defined]
    assert args.prefix == "team."  # type: ignore[attr-defined]


def test_a_local_drnflow_toml_and_the_variable_are_found(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.chdir(tmp_path)
    assert config_file.config_path(["simulate"]) == (None, ["simulate"])
    (tmp_path / "drnflow.toml").write_text(TOML)
    assert config_file.config_path(["simulate"]) == (Path("drnflow.toml"), ["simulate"])
    clean_env.setenv("DRNFLOW_CONFIG", str(tmp_path / "other.toml"))
    assert config_file.config_path(["simulate"])[0] == tmp_path / "other.toml"
    # After the command, --config is the command's business, not the file's.
    assert config_file.config_path(["simulate", "--config", "x"])[1] == ["simulate", "--config", "x"]


@pytest.mark.parametrize(("text", "fragment"), [
    ("kafka = 1\n", "unknown key 'kafka'"),
    ("[nope]\nx = 1\n", "[nope] is not a drnflow command"),
    ("[simulate]\nimpresions = 3\n", "[simulate] has no option 'impresions'"),
    ("[model.init]\nalfa = 3\n", "[model.init] has no option 'alfa'"),
    ("bootstrap = \n", "config file"),
])
def test_mistakes_in_the_file_are_named(tmp_path: Path, clean_env: pytest.MonkeyPatch, text: str,
                                        fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["--config", str(path), "simulate"]) == 1
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err


def test_a_missing_file_is_an_error(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        config_file.load(tmp_path / "none.toml")
