"""An offline stand-in of the Hugging Face Hub and the Inference Providers router, for your tests.

A real HTTP/1.1 server on loopback that lists models, returns provider mappings, publishes the router's
catalogue and answers OpenAI-compatible chat completions (streamed or not) the way each provider's
route does, with errors, broken streams and delays on demand. Everything is deterministic and needs no
network::

    import os
    from hf_textgen.testing import Provider, StubServer

    models = {"meta-llama/Llama-3.3-70B-Instruct": [
        Provider("novita", error_status=402),     # "credits exhausted": your app should fail over
        Provider("together", text="Hi there!"),   # streams the deltas "Hi", " there", "!"
    ]}
    with StubServer(models) as stub:
        os.environ.update(stub.env())             # HF_ENDPOINT, HF_TEXTGEN_ROUTER_URL, HF_TOKEN
        ...                                       # run the code under test
        assert [r.path for r in stub.requests][-1] == "/together/v1/chat/completions"

With pytest, the ``hf_stub`` fixture (installed with hf_textgen) starts one with
:func:`default_models` and sets those variables for the test::

    def test_greeting(hf_stub):
        hf_stub.provider("meta-llama/Llama-3.3-70B-Instruct", "together").update(text="Bonjour !")
        ...

From a shell, ``python -m hf_textgen.testing [--host H] [--port N] [--mapping-shape dict|list] [-v]``
(also ``hf-textgen serve-stub``) serves the default configuration until Ctrl-C.

What it speaks, hub and router on one base URL (``stub.url``):

- ``GET /api/models?...``: listing, pages of ``min(limit, page_size)`` linked by ``Link: <...>; rel="next"``;
  ``inference_provider=all|<name>[,...]`` keeps the models that provider serves, ``pipeline_tag=`` filters;
- ``GET /api/models/{model_id}``: ``{"id", "pipeline_tag", "inferenceProviderMapping"}``, dict or list shape;
- ``POST /{provider}{route}``: each provider's route (:data:`ROUTES`), body ``model`` = its ``providerId``;
- ``POST /v1/chat/completions``: server-side routing, ``model`` = ``org/name[:fastest|:cheapest|
  :preferred|:<provider>]``, failing over on the router's side, answered with ``x-inference-provider``;
- ``GET /v1/models`` and ``GET /v1/models/{model_id}``: the router's catalogue (context length, prices,
  capabilities, latency and throughput per provider), breakable with ``stub.catalog_status``,
  ``stub.catalog_body`` and ``stub.catalog_delay``.

Router requests need ``Authorization: Bearer hf_...`` (``require_token=False`` turns that off). Every
request is recorded in ``stub.requests`` with the token redacted. Standard library only: nothing here
imports hf_textgen's library modules.

Layout, in the direction data flows: :mod:`.config` (routes, :class:`Provider`), :mod:`.defaults`,
:mod:`.answers` (answers as values), :mod:`.hub` (GET: Hub and catalogue), :mod:`.routing` (POST: which
provider answers), :mod:`.stub` (:class:`StubServer`), :mod:`.server` (the HTTP I/O), :mod:`.cli`.
"""
from __future__ import annotations

from .answers import completion as completion, stream_events as stream_events
from .cli import main
from .config import DEFAULT_ROUTE, ROUTES, Provider, route_for, split_text
from .config import ERROR_BODIES as ERROR_BODIES, ERROR_FRAMES as ERROR_FRAMES, FRAMINGS as FRAMINGS
from .config import MAPPING_SHAPES as MAPPING_SHAPES, POLICIES as POLICIES, STUB_TOKEN as STUB_TOKEN
from .config import UNSUPPORTED_SHAPES as UNSUPPORTED_SHAPES, default_provider_id as default_provider_id
from .defaults import default_models
from .routing import RETRY_STATUSES, policy_order
from .stub import RecordedRequest, StubServer

__all__ = [
    "DEFAULT_ROUTE",
    "RETRY_STATUSES",
    "ROUTES",
    "Provider",
    "RecordedRequest",
    "StubServer",
    "default_models",
    "main",
    "policy_order",
    "route_for",
    "split_text",
]
