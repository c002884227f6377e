"""What the library says besides its chunks, worded by the CLI.

While a command runs, :class:`Notices` collects the ``hf_textgen`` logger's warnings and the
warnings issued with ``warnings.warn``, and prints them as ``hf-textgen: warning: ...``, one
line each, tokens removed. ``InputTrimmedWarning`` is dropped: the ``Trimmed`` chunk reports
it. With ``-v`` the logger's lower levels go to stderr too. Everything is undone on exit, so
``main()`` can run many times in one process.
"""
from __future__ import annotations

import logging
import warnings
from types import TracebackType
from typing import IO, Any, Callable, List, Optional, Tuple, Type

from .exits import PROG

LOGGER = "hf_textgen"


class _Buffer(logging.Handler):
    """Keeps the logger's warnings until the CLI prints them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def log_text(record: logging.LogRecord) -> str:
    """A log record's message on one line."""
    try:
        return " ".join(record.getMessage().split())
    except Exception:  # a malformed log call must not break the answer
        return str(record.msg)


class Notices:
    """``with Notices(stderr, verbose) as notices:`` for the length of a command."""

    def __init__(self, err: Optional[IO[str]], verbose: bool = False) -> None:
        self.err = err
        self.verbose = verbose
        self._buffer = _Buffer()
        self._verbose_handler: Optional[logging.Handler] = None
        self._warnings: List[warnings.WarningMessage] = []
        self._catcher: Optional[warnings.catch_warnings] = None
        self._level = logging.NOTSET

    def __enter__(self) -> Notices:
        logger = logging.getLogger(LOGGER)
        self._level = logger.level
        logger.addHandler(self._buffer)
        if self.verbose:
            handler = logging.StreamHandler(self.err)
            handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
            handler.addFilter(lambda record: record.levelno < logging.WARNING)  # warnings are worded here
            logger.addHandler(handler)
            self._verbose_handler = handler
            logger.setLevel(logging.DEBUG)
        elif logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
        self._catcher = warnings.catch_warnings(record=True)
        self._warnings = self._catcher.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        try:
            self.flush()
        except OSError:  # stderr is gone too: nothing left to tell
            pass
        if self._catcher is not None:
            self._catcher.__exit__(kind, value, tb)
        logger = logging.getLogger(LOGGER)
        logger.removeHandler(self._buffer)
        if self._verbose_handler is not None:
            logger.removeHandler(self._verbose_handler)
        logger.setLevel(self._level)

    def take(self) -> List[str]:
        """The warnings received since the last call, one line each (tokens removed)."""
        from hf_textgen.errors import InputTrimmedWarning, redact

        records, self._buffer.records = self._buffer.records, []
        issued, self._warnings[:] = list(self._warnings), []
        lines = [log_text(record) for record in records]
        lines += [" ".join(str(w.message).split()) for w in issued if not issubclass(w.category, InputTrimmedWarning)]
        return [redact(line) for line in lines]

    def discard(self, about: Callable[[Any], bool]) -> None:
        """Forget the logged warnings whose arguments include a value ``about`` accepts (the CLI
        says those itself: the model listing's fallback)."""
        self._buffer.records = [r for r in self._buffer.records if not any(about(a) for a in _args(r))]

    def flush(self) -> None:
        """Print the warnings received so far."""
        lines = self.take()
        if lines and self.err is not None:
            self.err.write("".join(f"{PROG}: warning: {line}\n" for line in lines))
            self.err.flush()


def _args(record: logging.LogRecord) -> Tuple[Any, ...]:
    args = record.args
    if isinstance(args, tuple):
        return args
    return (args,) if args is not None else ()
