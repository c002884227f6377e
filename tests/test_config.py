"""Configuration: URLs and the token read at call time, token precedence, where a token may go, timeouts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hf_textgen import Timeouts, config
from hf_textgen.errors import ConfigurationError

from mocked import backoffs, isolated  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("isolated")


def test_hub_and_router_urls_default_and_follow_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (config.hub_url(), config.router_url()) == ("https://huggingface.co", "https://router.huggingface.co")
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", "http://127.0.0.1:8080/")
    assert (config.hub_url(), config.router_url()) == ("https://mirror.example", "http://127.0.0.1:8080")
    monkeypatch.setenv("HF_ENDPOINT", "")
    assert config.hub_url() == "https://huggingface.co"


@pytest.fixture
def every_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A different token in each place, so that the one found tells where it came from."""
    monkeypatch.setenv("HF_TOKEN", " hf_from_env\n")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_from_old_env")
    token_path = tmp_path / "explicit-token"
    token_path.write_text("hf_from_token_path\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(token_path))
    (tmp_path / "hf_home").mkdir()
    (tmp_path / "hf_home" / "token").write_text("  hf_from_hf_home  \n")
    return token_path


def test_token_precedence(monkeypatch: pytest.MonkeyPatch, every_source: Path) -> None:
    assert config.find_token(" hf_argument\t") == "hf_argument"
    found = []
    for remove in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HOME"):
        found.append(config.find_token())
        monkeypatch.delenv(remove)
    assert found == ["hf_from_env", "hf_from_old_env", "hf_from_token_path", "hf_from_hf_home"]


def test_blank_values_fall_through_to_the_next_source(monkeypatch: pytest.MonkeyPatch, every_source: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "  ")
    assert config.find_token("") == "hf_from_old_env"
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN")
    every_source.write_text(" \n")
    assert config.find_token("   ") is None


def test_no_token_anywhere_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config.find_token() is None
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path))  # a directory: unreadable, not an error
    assert config.find_token() is None
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "binary"))
    assert config.find_token() is None


def test_hf_home_defaults_to_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.token_file() == tmp_path / ".cache" / "huggingface" / "token"


@pytest.mark.parametrize("token, hf", [("hf_abc", True), ("sk-abc", False), ("", False), (None, False), ("HF_abc", False), ("xhf_abc", False)])
def test_only_hf_tokens_are_hub_tokens(token: Any, hf: bool) -> None:
    assert config.is_hf_token(token) is hf


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://example.com/v1", True),
        ("HTTPS://example.com/v1", True),
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.1.2.3/v1", True),
        ("http://localhost/v1", True),
        ("http://LOCALHOST:80/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://example.com/v1", False),
        ("http://10.0.0.8:8080/v1", False),
        ("http://127.evil.com/v1", False),
        ("http://127.0.0.1.nip.io/v1", False),
        ("http://localhost.evil.com/v1", False),
        ("http://[::2]/v1", False),
        ("ftp://127.0.0.1/x", True),
        ("ftp://example.com/x", False),
    ],
)
def test_a_token_goes_over_https_or_to_a_loopback_host_only(url: str, allowed: bool) -> None:
    assert config.may_carry_token(url) is allowed


@pytest.mark.parametrize(
    "timeout, expected",
    [
        (None, Timeouts()),
        (5, Timeouts(connect=5.0, read=5.0)),
        (0.5, Timeouts(connect=0.5, read=0.5)),
        ((2, 30), Timeouts(connect=2.0, read=30.0)),
        (Timeouts(connect=1, read=2, total=3), Timeouts(connect=1, read=2, total=3)),
    ],
)
def test_timeouts(timeout: Any, expected: Timeouts) -> None:
    assert config.make_timeouts(timeout) == expected


@pytest.mark.parametrize("timeout", [0, -1, True, "5", float("nan"), float("inf"), (1,), (1, 2, 3), (0, 5), (5, -1), (5, None), [1, 2]])
def test_unusable_timeouts_are_refused(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        config.make_timeouts(timeout)
