"""A long-lived worker process measuring one client: ``worker.py <client key> <server url>``.

Protocol (JSON lines): the worker prints ``{"ready": true}`` once its client is imported and created,
then answers each request line ``{"op": ..., "args": {...}, "limit_s": ...}`` with one result line
(``{"error": "..."}`` on failure). It exits when stdin closes. Anything the libraries print goes to
stderr, never into the protocol.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Dict, TextIO

import clients
import measure
from server import raise_fd_limit


def protocol_stdout() -> TextIO:
    """Keep the real stdout for protocol lines; point fd 1 (and print) at stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def answer(client: clients.Client, request: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return measure.run(client, request["op"], request.get("args", {}), request.get("limit_s", 120.0))
    except BaseException as exc:  # reported to the orchestrator, which decides
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def main() -> None:
    out = protocol_stdout()
    raise_fd_limit()
    try:
        client = clients.create(sys.argv[1], sys.argv[2])
    except BaseException as exc:
        print(json.dumps({"error": f"cannot create {sys.argv[1]}: {type(exc).__name__}: {exc}"}), file=out)
        return
    print(json.dumps({"ready": True}), file=out)
    for line in sys.stdin:
        print(json.dumps(answer(client, json.loads(line))), file=out)


if __name__ == "__main__":
    main()
