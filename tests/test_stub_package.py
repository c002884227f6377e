"""The stand-in's package: what it exports, and that it stays standard library only."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Set

import hf_textgen.testing as testing
from hf_textgen.testing import answers, config

PACKAGE = Path(testing.__file__).parent


def test_public_names() -> None:
    assert sorted(testing.__all__) == sorted([
        "DEFAULT_ROUTE", "ROUTES", "Provider", "RecordedRequest", "StubServer", "default_models", "main",
        "route_for", "split_text",  # before the split
        "RETRY_STATUSES", "policy_order",  # server-side routing
    ])
    assert all(getattr(testing, name) is not None for name in testing.__all__)
    for name in ("STUB_TOKEN", "POLICIES", "MAPPING_SHAPES", "FRAMINGS", "ERROR_FRAMES", "default_provider_id",
                 "completion", "stream_events",  # public before the split, still importable
                 "ERROR_BODIES", "UNSUPPORTED_SHAPES"):
        assert hasattr(testing, name), name


def test_the_docstring_keeps_its_example() -> None:
    assert "with StubServer(models) as stub:" in (testing.__doc__ or "")
    assert "def test_greeting(hf_stub):" in (testing.__doc__ or "")


def _imports(path: Path) -> Set[str]:
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module or "")
    return found


def test_standard_library_only_and_nothing_from_the_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert {path.name for path in modules} >= {"__init__.py", "__main__.py", "config.py", "answers.py",
                                                "hub.py", "routing.py", "stub.py", "server.py", "cli.py"}
    for path in modules:
        tops = {name.split(".")[0] for name in _imports(path)}
        assert tops <= set(sys.stdlib_module_names) | {"__future__"}, (path.name, tops - set(sys.stdlib_module_names))


def test_every_module_is_small() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 250, path.name


def test_every_error_body_style_has_a_builder() -> None:
    assert set(answers.ERROR_BODY_BUILDERS) == set(config.ERROR_BODIES)


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "hf_textgen.testing", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    for option in ("--host", "--port", "--mapping-shape", "--verbose"):
        assert option in done.stdout
