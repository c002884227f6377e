"""The :class:`StubServer` a test holds: its configuration, its lifecycle and the requests it received."""
from __future__ import annotations

import dataclasses
import json
import re
import threading
from dataclasses import dataclass
from typing import AbstractSet, Any, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from .answers import DEFAULT_ERROR_MESSAGES, Answer, json_reply
from .config import MAPPING_SHAPES, STUB_TOKEN, Provider, default_provider_id
from .defaults import default_models
from .hub import answer_get
from .routing import RETRY_STATUSES, answer_post
from .server import HTTPServer

_HF_TOKEN = re.compile(r"hf_\w+")
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received: ``path`` includes the query; ``body`` is parsed JSON when it is JSON."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any


def _redacted(name: str, value: str) -> str:
    if name.lower() != "authorization":
        return value
    return "Bearer ***" if value.lower().startswith("bearer ") else "***"


def _parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else raw
    except ValueError:
        return raw


class StubServer:
    """The offline Hub + router. ``with StubServer(models) as stub:`` or ``start()`` / ``stop()``.

    ``models`` maps a Hub id to its providers in mapping order (default :func:`default_models`);
    each :class:`Provider` is copied in with its ``provider_id`` filled in. ``require_token``: router
    calls need ``Bearer hf_...`` (exactly ``token`` when given); a Hub call with a bad token gets 401 too.
    These attributes may be changed while it runs: ``mapping_shape`` (``dict`` or ``list``),
    ``page_size``, ``router_retry_statuses`` (after which server-side routing tries the next provider;
    empty: never), ``catalog_status`` (the catalogue answers that status), ``catalog_body`` (raw bytes
    instead, e.g. invalid JSON; with ``catalog_status`` or 200) and ``catalog_delay`` (seconds before
    the catalogue answers).
    """

    def __init__(
        self,
        models: Optional[Mapping[str, Iterable[Provider]]] = None,
        *,
        mapping_shape: str = "dict",
        page_size: int = 50,
        require_token: bool = True,
        token: Optional[str] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        router_retry_statuses: AbstractSet[int] = RETRY_STATUSES,
    ) -> None:
        if mapping_shape not in MAPPING_SHAPES:
            raise ValueError(f"mapping_shape must be one of {MAPPING_SHAPES}, not {mapping_shape!r}")
        self.mapping_shape = mapping_shape
        self.page_size = page_size
        self.require_token = require_token
        self.token = token
        self.host = host
        self.router_retry_statuses = router_retry_statuses
        self.catalog_status: Optional[int] = None
        self.catalog_body: Optional[bytes] = None
        self.catalog_delay = 0.0
        self._port = port
        self._lock = threading.Lock()
        self._models: Dict[str, List[Provider]] = {}
        self._requests: List[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: Optional[HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        for model_id, providers in (default_models() if models is None else models).items():
            self.set_model(model_id, providers)

    # configuration
    def set_model(self, model_id: str, providers: Iterable[Provider]) -> List[Provider]:
        """Add or replace a model; returns the stored providers (update those to change answers)."""
        stored = [dataclasses.replace(p, provider_id=p.provider_id or default_provider_id(p.name, model_id))
                  for p in providers]
        with self._lock:
            self._models[model_id] = stored
        return list(stored)

    def remove_model(self, model_id: str) -> None:
        """Forget a model: the Hub answers 404 for it from now on."""
        with self._lock:
            del self._models[model_id]

    def provider(self, model_id: str, name: str) -> Provider:
        """The stored provider ``name`` of ``model_id``; ``.update(...)`` it to change its answers."""
        with self._lock:
            found = [p for p in self._models.get(model_id, ()) if p.name == name]
        if not found:
            raise KeyError(f"{model_id!r} has no provider {name!r}")
        return found[0]

    @property
    def models(self) -> Dict[str, List[Provider]]:
        """A copy of the configuration: Hub id → stored providers."""
        with self._lock:
            return {model_id: list(providers) for model_id, providers in self._models.items()}

    # lifecycle
    def start(self) -> StubServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("the stub server is already running")
        self._stopping.clear()
        self._httpd = HTTPServer((self.host, self._port), self._answer, self._record, self._stopping)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hf-textgen-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt streams and close every connection. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the stub server is not running: call start() first")
        return int(self._httpd.server_address[1])

    @property
    def connect_host(self) -> str:
        """The address to connect to: ``host``, or the loopback address when bound to all (0.0.0.0, ::)."""
        return _WILDCARDS.get(self.host, self.host)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: both the Hub and the router."""
        host = self.connect_host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    hub_url = url
    router_url = url

    def env(self, token: str = STUB_TOKEN) -> Dict[str, str]:
        """The environment that points hf_textgen (or huggingface_hub) at this stub."""
        return {"HF_ENDPOINT": self.hub_url, "HF_TEXTGEN_ROUTER_URL": self.router_url, "HF_TOKEN": token}

    # records
    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def streams_open(self) -> int:
        """Streamed answers being written now (0 once every client closed or finished its stream)."""
        return self._httpd.streams_open if self._httpd is not None else 0

    @property
    def streams_abandoned(self) -> int:
        """Streamed answers whose client closed the connection before their end, since start."""
        return self._httpd.streams_abandoned if self._httpd is not None else 0

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, method: str, path: str, headers: Iterable[Tuple[str, str]], raw: bytes) -> None:
        recorded = RecordedRequest(method, path, {k: _redacted(k, v) for k, v in headers}, _parse_body(raw))
        with self._lock:
            self._requests.append(recorded)

    # answers
    def _answer(self, method: str, path: str, authorization: Optional[str], raw: bytes) -> Answer:
        """The answer to one request (the server only does the I/O)."""
        url = urlsplit(path)
        models = self._snapshot()
        if (method == "POST" or authorization) and not self._authorized(authorization):
            return json_reply(401, {"error": DEFAULT_ERROR_MESSAGES[401]})
        if method == "GET":
            return answer_get(url.path, url.query, models, shape=self.mapping_shape, page_size=self.page_size,
                              base_url=self.url, catalog_status=self.catalog_status,
                              catalog_body=self.catalog_body, catalog_delay=self.catalog_delay)
        return answer_post(url.path, _parse_body(raw), models, self.router_retry_statuses)

    def _snapshot(self) -> Dict[str, List[Provider]]:
        with self._lock:
            return {model_id: [p.snapshot() for p in providers] for model_id, providers in self._models.items()}

    def _authorized(self, authorization: Optional[str]) -> bool:
        if not self.require_token:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return token == self.token if self.token else bool(_HF_TOKEN.fullmatch(token))
