"""Child processes that speak JSON lines (the bench server and the workers), bounded everywhere:
every wait has a timeout, and every child is killed by its pid on stop, on error and at exit."""
from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

HERE = Path(__file__).resolve().parent
_live: Set["Child"] = set()


class ChildError(RuntimeError):
    """A child answered with an error, died, or did not answer in time."""


class Child:
    """``python <script> <args>`` with a JSON-line conversation on its stdin/stdout."""

    def __init__(self, script: str, args: List[str], log: Path) -> None:
        """Start the child; call :meth:`ready` before talking to it."""
        self.label = " ".join([script, *args])
        self.log = log
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        with open(log, "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / script), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
                cwd=HERE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        _live.add(self)
        threading.Thread(target=self._pump, daemon=True).start()
        self.hello: Dict[str, Any] = {}

    def ready(self, timeout: float = 60.0) -> "Child":
        """Wait for the child's first line (its hello: ready, or the server's port)."""
        self.hello = self.read(timeout)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout: float) -> Dict[str, Any]:
        """The child's next line, parsed; an ``error`` answer, death or silence raise ChildError."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise ChildError(f"{self.label}: no answer within {timeout:.0f} s (killed){self.log_tail()}") from None
        if line is None:
            self.stop()
            raise ChildError(f"{self.label}: exited with {self.proc.poll()}{self.log_tail()}")
        message = json.loads(line)
        if "error" in message:
            raise ChildError(f"{self.label}: {message['error']}")
        return message

    def ask(self, message: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self.stop()
            raise ChildError(f"{self.label}: cannot send ({exc}){self.log_tail()}") from None
        return self.read(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 2.0) -> None:
        """Close stdin (the child exits), then kill the pid if it is still there."""
        _live.discard(self)
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 8) -> str:
        try:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n    " + "\n    ".join(tail)) if tail else ""


def stop_all() -> None:
    for child in list(_live):
        child.stop(grace_s=1.0)


atexit.register(stop_all)
