"""Settings: TOML and YAML files, environment overrides, errors that name the bad line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenomy.config import load_settings
from tokenomy.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tokenomy.toml"


def test_no_config_serves_local_model() -> None:
    settings = load_settings(None, environ={})
    assert {n: b.kind for n, b in settings.backends.items()} == {"local": "local"}


def test_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert {b.kind for b in settings.backends.values()} == {"openai", "anthropic", "litellm",
                                                            "local"}
    assert settings.models["fast"].fallbacks == ["local"]


def test_env_overrides_file() -> None:
    settings = load_settings(EXAMPLE, environ={"TOKENOMY_SERVER__PORT": "9123",
                                               "TOKENOMY_BACKENDS__OPENAI__TIMEOUT": "7"})
    assert settings.server.port == 9123
    assert settings.backends["openai"].timeout == 7


def test_api_key_from_env_var() -> None:
    settings = load_settings(EXAMPLE, environ={})
    import os

    os.environ["OPENAI_API_KEY"] = "sk-test-123"
    try:
        assert settings.backends["openai"].resolved_api_key() == "sk-test-123"
    finally:
        del os.environ["OPENAI_API_KEY"]


def test_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = 8787\n\n[backends.up]\nkind = "openai"\n'
                    'base_url = "http://x"\ntimeout = "soon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert f"{path}:7: backends.up.timeout" in info.value.message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  port: 8787\n  colour: blue\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert f"{path}:3: server.colour" in info.value.message


def test_alias_to_missing_backend(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[models.fast]\nbackend = "nowhere"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "nowhere" in info.value.message


def test_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "not valid TOML" in info.value.message and "line 1" in info.value.message


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/tokenomy.toml", environ={})


@pytest.mark.parametrize(("backend", "named"), [
    ('kind = "litellm"\nforward_fields = ["future_field"]', "litellm"),
    ('kind = "openai"\nbase_url = "http://x"\nforward_fields = ["model"]', "'model'"),
    ('kind = "openai"\nbase_url = "http://x"\nforward_fields = ["a b"]', "'a b'"),
])
def test_forward_fields_only_where_they_cannot_become_options(
        tmp_path: Path, backend: str, named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"[backends.up]\n{backend}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "forward_fields" in info.value.message and named in info.value.message
