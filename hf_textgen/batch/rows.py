"""Input rows: the JSONL file read as a stream, one line at a time, and each line turned into a
:class:`Row` to send or a :class:`BadRow` that says why not. Pure apart from reading the file.

A row is a JSON object: ``{"id": ..., "messages": [...]}`` or ``{"id": ..., "prompt": "..."}``,
plus any parameter of :meth:`hf_textgen.Client.create_completion` (``model``, ``max_tokens``,
``temperature``, ``response_format``, ``tools``, ``provider``, ...), except ``api_key`` (a token has
no place in a data file). ``timeout`` may be a number or a ``[connect, read]`` pair.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ..client import Client
from ..errors import ConfigurationError
from ..validate import PARAMETERS

__all__ = ["Row", "BadRow", "IdProblem", "Line", "read_lines", "parse", "check_shard", "in_shard", "ROW_FIELDS"]

Id = Union[str, int]

_CALL_FIELDS = [
    name for name, parameter in inspect.signature(Client.create_completion).parameters.items()
    if parameter.kind is not inspect.Parameter.VAR_KEYWORD and name not in ("self", "messages", "api_key")
]
#: Every field a row may carry.
ROW_FIELDS = ("id", "messages", "prompt", *_CALL_FIELDS, *PARAMETERS)
_KNOWN = frozenset(ROW_FIELDS)
_REFUSED = {"api_key": "api_key does not belong in an input file: give the token with HF_TOKEN or Client(api_key=...)"}


@dataclass(frozen=True)
class Line:
    """A non-empty line of the input: its 1-based ``number`` in the file, its 0-based ``position``
    among the non-empty lines (what ``shard`` counts) and its bytes (newline included)."""

    number: int
    position: int
    raw: bytes


@dataclass(frozen=True)
class Row:
    """A row ready to send: ``model`` None means the run's default."""

    line: int
    id: Id
    messages: List[Dict[str, Any]]
    model: Optional[str] = None
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be sent: ``reason`` names what is wrong (``id`` None when unknown)."""

    line: int
    id: Optional[Id]
    reason: str

    @property
    def message(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class IdProblem:
    """A row without a usable ``id``: the whole run is refused (ids are what resuming counts on)."""

    line: int
    reason: str


def read_lines(path: str) -> Iterator[Line]:
    """The file's non-empty lines, read as a stream (never the whole file in memory)."""
    position = 0
    try:
        lines = open(path, "rb")
    except OSError as error:
        raise ConfigurationError(f"cannot read the input file {path}: {error.strerror}") from None
    with lines:
        for number, raw in enumerate(lines, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark
            if raw.strip():
                yield Line(number, position, raw)
                position += 1


def check_shard(shard: Any) -> Optional[Tuple[int, int]]:
    """``None`` or ``(K, N)`` with ``0 <= K < N``; anything else raises ``ValueError`` in plain words."""
    if shard is None:
        return None
    ok = isinstance(shard, (tuple, list)) and len(shard) == 2 and all(type(part) is int for part in shard)
    if not ok or not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard must be (K, N) with whole numbers 0 <= K < N, such as (0, 4), not {shard!r}")
    return int(shard[0]), int(shard[1])


def in_shard(line: Line, shard: Optional[Tuple[int, int]]) -> bool:
    """Whether this shard takes the line: position modulo N is K."""
    return shard is None or line.position % shard[1] == shard[0]


def _decode(raw: bytes) -> Tuple[Optional[Dict[str, Any]], str]:
    """The line's JSON object, or None and why not."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 text (byte {error.start + 1})"
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(value, dict):
        return None, f"a row must be a JSON object, not {type(value).__name__}"
    return value, ""


def id_of(value: Dict[str, Any], number: int) -> Union[Id, IdProblem]:
    """The row's id: a non-empty string or an integer."""
    if "id" not in value or value["id"] is None:
        return IdProblem(number, 'no "id": give every row a unique "id" (a string or an integer)')
    row_id = value["id"]
    if isinstance(row_id, bool) or not isinstance(row_id, (str, int)) or row_id == "":
        return IdProblem(number, f'"id" must be a non-empty string or an integer, not {json.dumps(row_id)[:40]}')
    return row_id


def parse(line: Line) -> Union[Row, BadRow, IdProblem]:
    """One line as a row, a bad row, or an id problem. The values of the parameters are checked
    later, by the library (:func:`hf_textgen.batch.scan.check`)."""
    value, why = _decode(line.raw)
    if value is None:
        return BadRow(line.number, None, why)
    row_id = id_of(value, line.number)
    if isinstance(row_id, IdProblem):
        return row_id
    refused = [_REFUSED[name] for name in value if name in _REFUSED]
    unknown = sorted(name for name in value if name not in _KNOWN and name not in _REFUSED)
    if refused:
        return BadRow(line.number, row_id, refused[0])
    if unknown:
        return BadRow(line.number, row_id, f"unknown field(s) {', '.join(map(repr, unknown))}: a row takes id, messages or "
                      "prompt, and the parameters of Client.create_completion (model, max_tokens, temperature, ...)")
    has_messages, has_prompt = "messages" in value, "prompt" in value
    if has_messages == has_prompt:
        return BadRow(line.number, row_id, 'give either "messages" (a list of {"role", "content"}) or "prompt" (a string)'
                      + (", not both" if has_messages else ""))
    if has_prompt:
        prompt = value["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            return BadRow(line.number, row_id, f'"prompt" must be a non-empty string, not {json.dumps(prompt)[:40]}')
        messages: Any = [{"role": "user", "content": prompt}]
    else:
        messages = value["messages"]
    params = {name: item for name, item in value.items() if name not in ("id", "messages", "prompt", "model")}
    if isinstance(params.get("timeout"), list):
        params["timeout"] = tuple(params["timeout"])
    return Row(line.number, row_id, messages, value.get("model"), params)
