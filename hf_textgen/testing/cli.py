"""``python -m hf_textgen.testing`` (and ``hf-textgen serve-stub``): serve :func:`default_models` until stopped."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
from typing import Callable, Mapping, Optional, Sequence

from .config import MAPPING_SHAPES
from .stub import StubServer


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address: where hf_textgen sends a token over plain http."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def banner(host: str, connect_host: str, url: str, env: Mapping[str, str]) -> str:
    """The first line printed: where to connect, what to export, and how other machines could reach it.

    ``host`` is the bind address; ``connect_host`` and ``url`` are where to connect (loopback for a
    wildcard bind such as 0.0.0.0 or ``::``, which is no address to connect to).
    """
    exports = " ".join(f"{name}={value}" for name, value in env.items())
    line = f"hf_textgen stub serving on {url}"
    if connect_host != host:
        line += f" (bound to all interfaces, {host or '0.0.0.0'})"
    line += f" ; export {exports}"
    if not is_loopback(host):
        line += (" ; hf_textgen sends no token over plain http to a non-loopback host, so other machines"
                 " need an https front (a TLS reverse proxy) to this port")
    return line + " ; Ctrl-C to stop"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve :func:`default_models` in the foreground until Ctrl-C or SIGTERM; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m hf_textgen.testing",
                                     description="Offline stand-in of the Hugging Face Hub and router.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--mapping-shape", choices=MAPPING_SHAPES, default="dict",
                        help="shape of inferenceProviderMapping (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    stub = StubServer(host=args.host, port=args.port, mapping_shape=args.mapping_shape)
    try:
        stub.start()
    except OSError as exc:
        print(f"hf_textgen stub: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    restore = _on_sigterm(done.set)
    try:
        print(banner(stub.host, stub.connect_host, stub.url, stub.env()), flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        stub.stop()
    return 0


def _on_sigterm(handler: Callable[[], None]) -> Callable[[], None]:
    """Call ``handler`` on SIGTERM (main thread only); returns what restores the previous handler."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: handler())
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return restore
