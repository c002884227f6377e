"""Stopping a call from another thread (the async bridge does, when its consumer leaves).

:class:`SocketWatch` shuts down the socket a call is blocked on: while it sends, waits for the
answer's headers, or reads the body. :class:`Cancel` bundles what a stop needs: the watch, the
flag failover checks before trying the next provider, and the pause it waits in before a
rate-limit retry, which a stop cuts short.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Optional

__all__ = ["SocketWatch", "DeadlineWatch", "Cancel", "shutdown"]


def shutdown(sock: Optional[socket.socket]) -> None:
    """Shut ``sock`` down, waking any thread blocked on it (a no-op for None or a closed socket)."""
    if sock is not None:
        try:  # the plain socket call also works under TLS, without touching the SSL object
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class SocketWatch:
    """Holds the socket a call waits on; :meth:`fire` (any thread) shuts it down, now or as soon
    as one is attached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: Optional[socket.socket] = None
        self.fired = False

    def attach(self, sock: Optional[socket.socket]) -> None:
        """Watch ``sock`` (None: stop watching, e.g. before the connection goes back to the pool)."""
        with self._lock:
            self._socket = sock
            if self.fired:
                shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            shutdown(self._socket)


class DeadlineWatch(SocketWatch):
    """A watch fired by a timer at ``at`` (``time.monotonic()``): a server that drips its headers
    cannot outlast a deadline, which the read timeout alone (per byte) would allow."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self._timer = threading.Timer(max(0.0, at - time.monotonic()), self.fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


class Cancel:
    """Stops a call from another thread: ``cancel()`` sets the flag (``is_set``), cuts a
    :meth:`pause` short and fires the socket watch."""

    def __init__(self) -> None:
        self.watch = SocketWatch()
        self._event = threading.Event()

    def __call__(self) -> None:
        self._event.set()
        self.watch.fire()

    def is_set(self) -> bool:
        return self._event.is_set()

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False (at once) if the call is cancelled meanwhile."""
        return not self._event.wait(seconds)
