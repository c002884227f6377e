"""A real ``python -m hf_textgen.batch`` process, killed (SIGKILL) or interrupted (SIGINT) while it
runs against the stand-in: no finished row is lost, none is written twice, the rerun completes."""
from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, List

import pytest

from hf_textgen import batch, clear_caches
from hf_textgen.testing import Provider, StubServer

from batch_support import MODEL, child_env, ids_of, lines_in, posts, prompts, read_output, stub_env, wait_until, write_rows

pytestmark = pytest.mark.slow


@pytest.fixture
def slow_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    """Two providers, about 0.1 s a row."""
    words = [f"w{n} " for n in range(6)]
    models = {MODEL: [Provider("together", chunks=words, delay=0.02), Provider("nebius", chunks=words, delay=0.02)]}
    with StubServer(models) as stub:
        stub_env(stub, monkeypatch)
        yield stub
    clear_caches()


def start(stub: StubServer, source: Path, output: Path, *options: str) -> "subprocess.Popen[str]":
    command = [sys.executable, "-m", "hf_textgen.batch", str(source), "-o", str(output), "-m", MODEL, *options]
    return subprocess.Popen(command, env=child_env(stub), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: "subprocess.Popen[str]") -> "subprocess.CompletedProcess[str]":
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the batch process did not end within 60 s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def every_id_once(output: Path, count: int) -> List[str]:
    ids = ids_of(read_output(output))
    repeated = [row_id for row_id, times in Counter(ids).items() if times > 1]
    assert not repeated, f"written twice: {repeated}"
    assert sorted(ids) == sorted(f"row-{n}" for n in range(count))
    return ids


@pytest.mark.parametrize("kill_after", [1, 20, 60])
def test_sigkill_at_any_moment_loses_and_repeats_nothing(tmp_path: Path, slow_stub: StubServer, kill_after: int) -> None:
    count = 150
    source, output = write_rows(tmp_path / "in.jsonl", prompts(count)), tmp_path / "out.jsonl"
    process = start(slow_stub, source, output, "-c", "4", "-q")
    wait_until(lambda: lines_in(output) >= kill_after or process.poll() is not None, f"{kill_after} rows on disk")
    process.kill()  # SIGKILL: no handler, no flush, no goodbye
    finish(process)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed: give it more rows"
    survived = read_output(output)  # every line whole
    assert kill_after <= len(survived) < count and len(set(ids_of(survived))) == len(survived)

    summary = batch.run(str(source), str(output), model=MODEL, concurrency=8)
    assert (summary.skipped, summary.ok, summary.failed) == (len(survived), count - len(survived), 0)
    every_id_once(output, count)
    assert posts(slow_stub) >= count  # the rows in flight at the kill were sent again


def test_killed_twice_then_finished(tmp_path: Path, slow_stub: StubServer) -> None:
    count = 120
    source, output = write_rows(tmp_path / "in.jsonl", prompts(count)), tmp_path / "out.jsonl"
    for kill_after in (10, 50):
        process = start(slow_stub, source, output, "-c", "4", "-q")
        wait_until(lambda: lines_in(output) >= kill_after or process.poll() is not None, f"{kill_after} rows on disk")
        process.kill()
        finish(process)
        assert process.returncode == -signal.SIGKILL
    done = finish(start(slow_stub, source, output, "-c", "8", "-q"))
    assert done.returncode == 0, done.stderr
    every_id_once(output, count)


def test_ctrl_c_stops_cleanly_with_a_summary_and_a_resumable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = [f"w{n} " for n in range(60)]  # about 1.2 s a row
    with StubServer({MODEL: [Provider("together", chunks=words, delay=0.02)]}) as stub:
        stub_env(stub, monkeypatch)
        count = 40
        source, output = write_rows(tmp_path / "in.jsonl", prompts(count)), tmp_path / "out.jsonl"
        process = start(stub, source, output, "-c", "6")
        wait_until(lambda: lines_in(output) >= 3, "3 rows on disk")
        wait_until(lambda: stub.streams_open >= 4, "streams in progress")
        process.send_signal(signal.SIGINT)
        done = finish(process)
        assert done.returncode == 130, done.stderr
        assert "stopped by SIGINT" in done.stdout and "rerun the same command to resume" in done.stdout
        assert "Traceback" not in done.stderr and "rows (" in done.stderr  # the final progress line
        written = read_output(output)
        assert 3 <= len(written) < count and len(set(ids_of(written))) == len(written)
        assert f"{len(written):,} ok" in done.stdout
        wait_until(lambda: stub.streams_open == 0, "the server to see every stream close")
        assert stub.streams_abandoned >= 1  # the rows in progress were cancelled, their connections closed

        stub.provider(MODEL, "together").update(delay=0.0)
        again = finish(start(stub, source, output, "-c", "8", "-q"))
        assert again.returncode == 0, again.stderr
        assert f"{len(written):,} skipped" in again.stdout
        every_id_once(output, count)
    clear_caches()
