"""hf_textgen's pytest plugin: the ``hf_stub`` fixture (an offline Hub + router, see ``hf_textgen.testing``).

pytest loads this module in every run of an environment where hf_textgen is installed, so it imports
nothing heavy: the stub server is imported only when a test asks for the fixture.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from hf_textgen.testing import StubServer


@pytest.fixture
def hf_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    """A running stub of the Hub and the router, with the default models and no streaming delays.

    ``HF_ENDPOINT``, ``HF_TEXTGEN_ROUTER_URL`` and ``HF_TOKEN`` point at it for the test's duration.
    hf_textgen's listing and mapping caches are emptied before and after, so no answer of an earlier
    test (or of the real Hub) is served from memory. Change answers with ``hf_stub.set_model(...)`` or
    ``hf_stub.provider(model, name).update(...)``; inspect what your code sent with ``hf_stub.requests``.
    """
    from hf_textgen import clear_caches
    from hf_textgen.testing import StubServer, default_models

    clear_caches()
    try:
        with StubServer(default_models(delay=0.0)) as stub:
            for name, value in stub.env().items():
                monkeypatch.setenv(name, value)
            yield stub
    finally:
        clear_caches()
