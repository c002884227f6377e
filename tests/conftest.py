from typing import Iterator

import pytest

from hf_textgen import hub

from support import FRAMINGS


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
