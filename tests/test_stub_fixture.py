"""The ``hf_stub`` fixture starts and ends every test with empty hf_textgen caches."""
from __future__ import annotations

import subprocess
import sys
from typing import Any, Iterator

import pytest

from hf_textgen import HuggingFaceAPI, hub

STALE = ("https://stale.example", "org/model", "")  # a key no stand-in uses: only clearing removes it


@pytest.fixture
def stale_caches() -> Iterator[None]:
    """What an earlier test left in memory: runs before ``hf_stub`` starts and after it stops."""
    hub._mappings.get_or_load(STALE, lambda: {"stale": {"providerId": "x", "status": "live", "task": "conversational"}})
    hub._listings.get_or_load(STALE, lambda: ["stale/model"])
    yield
    assert hub._mappings.get(STALE) is None and hub._listings.get(STALE) is None, "hf_stub did not clear at the end"


def test_hf_stub_starts_with_empty_caches_and_clears_them_at_the_end(stale_caches: None, hf_stub: Any) -> None:
    assert hub._mappings.get(STALE) is None and hub._listings.get(STALE) is None
    assert "meta-llama/Llama-3.3-70B-Instruct" in HuggingFaceAPI.get_models()  # fills the caches again
    hub._mappings.get_or_load(STALE, lambda: {})
    hub._listings.get_or_load(STALE, lambda: ["left/behind"])


def test_the_plugin_imports_nothing_heavy() -> None:
    code = ("import sys, hf_textgen.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('hf_textgen')))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "hf_textgen.testing" not in loaded  # the stand-in loads only when a test asks for hf_stub
