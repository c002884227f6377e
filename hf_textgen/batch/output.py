"""The output file, and what makes a run crash-safe and resumable.

- One JSON object a line, appended in completion order; each row is one ``os.write`` of the whole
  line on a file opened ``O_APPEND``, so a killed process leaves every finished row whole.
- Opening it takes an exclusive lock (``flock``; released by the kernel even after SIGKILL), so two
  runs never write one file; then it is read once to know which ids are done.
- A last line without its newline (a write cut by a crash, a full disk) is **torn**: the file is
  truncated to the end of the line before it, with a note, and that row runs again. A broken line
  anywhere else means the file is not ours (or was edited): the run is refused.
- Error rows are retried by a rerun: they are removed first, by writing the rows kept to a new file
  and renaming it over the old one (atomic), with a note. ``keep_errors`` keeps them, and their ids
  count as done. A row without an id (a line that was not JSON) is known by its ``line``.
- ``close()`` fsyncs: rows survive a killed process at once, a power failure once closed.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterator, List, Mapping, Optional, Set, Tuple

from ..errors import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["Output"]

logger = logging.getLogger("hf_textgen.batch")
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class Output:
    """The open, locked output file. Use :meth:`open`; :meth:`write` one record per finished row."""

    def __init__(self, path: str, fd: int, ids: Set[Any], lines: Set[int], notes: List[str], kept_errors: int) -> None:
        self.path, self._fd = path, fd
        self._ids, self._lines = ids, lines
        self.notes = notes
        self.kept_errors = kept_errors

    @classmethod
    def open(cls, path: str, keep_errors: bool = False) -> Output:
        """Lock ``path`` (created if missing), repair a torn last line, drop error rows unless
        ``keep_errors``, and learn the done ids. Raises ``ConfigurationError`` when it cannot."""
        try:
            fd = os.open(path, _FLAGS, 0o644)
        except OSError as error:
            raise ConfigurationError(f"cannot open the output file {path}: {error.strerror}") from None
        try:
            _lock(fd, path)
            return cls._resume(path, fd, keep_errors)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _resume(cls, path: str, fd: int, keep_errors: bool) -> Output:
        ids: Set[Any] = set()
        lines: Set[int] = set()
        notes: List[str] = []
        dropped = kept_errors = 0
        torn: Optional[Tuple[int, int]] = None
        for offset, raw, record in _records(path):
            if record is None:
                torn = (offset, len(raw))
                break
            if "error" in record and not keep_errors:
                dropped += 1
                continue
            kept_errors += "error" in record
            if record.get("id") is None:
                lines.add(record.get("line"))  # type: ignore[arg-type]
            else:
                ids.add(record["id"])
        if torn is not None:
            os.ftruncate(fd, torn[0])
            notes.append(f"{path}: the last line was cut short ({torn[1]} bytes without a newline or not JSON: "
                         "a run was killed while writing it); removed it, so its row runs again")
        if dropped:
            fd = _without_errors(path, fd)
            notes.append(f"{path}: removed {dropped} error row(s) of an earlier run, to retry them (keep_errors, --keep-errors, keeps them)")
        for note in notes:
            logger.warning("%s", note)
        return cls(path, fd, ids, lines, notes, kept_errors)

    @property
    def done_rows(self) -> int:
        return len(self._ids) + len(self._lines)

    def done(self, row_id: Any, line: int) -> bool:
        """Whether the output already holds this row (by id; by line for a row without one)."""
        return row_id in self._ids if row_id is not None else line in self._lines

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one finished row: the whole line in one write, handed to the kernel at once."""
        try:
            data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from the input: escape it instead
            data = (json.dumps(record, separators=(",", ":")) + "\n").encode("ascii")
        _write_all(self._fd, data)

    def close(self) -> None:
        """fsync, unlock and close (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """One ``os.write`` unless the disk fills up (then a torn line, which the next run repairs)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _lock(fd: int, path: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigurationError(
            f"{path} is being written by another batch run (it holds the file's lock): wait for it to end, "
            "or give each run (each shard) its own output file"
        ) from None


def _records(path: str) -> Iterator[Tuple[int, bytes, Optional[Mapping[str, Any]]]]:
    """(offset, line, record) for each line; record None for a torn last line (then it stops).
    A broken line before the last refuses the file."""
    offset, pending = 0, None
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            if pending is not None:  # the broken line was not the last one
                raise ConfigurationError(
                    f"{path} line {number - 1} is not a row written by a batch run, so this "
                    "output cannot be resumed safely: fix or remove that line, or write to a new file"
                )
            record = _record(raw)
            if record is None:
                pending = (offset, raw)
            else:
                yield offset, raw, record
            offset += len(raw)
    if pending is not None:
        yield pending[0], pending[1], None


def _record(raw: bytes) -> Optional[Mapping[str, Any]]:
    if not raw.endswith(b"\n"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "id" in record else None


def _without_errors(path: str, fd: int) -> int:
    """Rewrite ``path`` without its error rows (new file, locked, fsynced, renamed over); the new fd."""
    temporary = f"{path}.{os.getpid()}.tmp"
    new = os.open(temporary, _FLAGS | os.O_EXCL, 0o644)
    try:
        _lock(new, temporary)
        with open(path, "rb") as lines:
            for raw in lines:
                record = _record(raw)
                if record is not None and "error" not in record:
                    _write_all(new, raw)
        os.fsync(new)
        os.replace(temporary, path)
    except BaseException:
        os.close(new)
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _sync_directory(path)
    os.close(fd)  # the old file's lock goes with it; the new one is locked already
    return new


def _sync_directory(path: str) -> None:
    try:
        directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens directories
        return
    try:
        os.fsync(directory)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(directory)
