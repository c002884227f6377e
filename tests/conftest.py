from typing import Iterator

import pytest

from hf_textgen import hub

from support import FRAMINGS, Driver, Lab


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on both backends."""
    return request.param


@pytest.fixture(autouse=True)
def no_cached_mappings() -> Iterator[None]:
    """Every test starts and ends with empty Hub and catalogue caches."""
    hub.clear_caches()
    yield
    hub.clear_caches()


@pytest.fixture(params=FRAMINGS)
def framing(request: pytest.FixtureRequest) -> str:
    """Chunked and close-delimited bodies."""
    return request.param


@pytest.fixture(params=["sync", "asyncio", "trio"])
def driver(request: pytest.FixtureRequest) -> Driver:
    """The case run through ``create_completion``, and ``create_async_generator`` on asyncio and trio."""
    return Driver(request.param)


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """Loopback servers with no token or Hub/router URL from the environment; stopped at the end."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_TEXTGEN_ROUTER_URL"):
        monkeypatch.delenv(name, raising=False)
    lab = Lab(monkeypatch)
    yield lab
    lab.stop()
