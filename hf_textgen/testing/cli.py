"""``python -m hf_textgen.testing`` (and ``hf-textgen serve-stub``): serve :func:`default_models` until stopped."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Callable, Optional, Sequence

from .config import MAPPING_SHAPES
from .stub import StubServer


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
        exports = " ".join(f"{name}={value}" for name, value in stub.env().items())
        print(f"hf_textgen stub serving on {stub.url} ; export {exports} ; Ctrl-C to stop", flush=True)
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
    return lambda: signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
