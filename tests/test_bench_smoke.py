"""The benchmark harness (tests/bench/run.py) runs end to end on a tiny configuration.

Only the shape of its JSON is checked: no wall-clock figure is asserted (timing belongs to
``make bench``, not to the test suite)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

RUN = Path(__file__).resolve().parent / "bench" / "run.py"
OURS = ["hf_textgen", "hf_textgen-asyncio", "hf_textgen-trio"]


def run_tiny(out: Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``run.py --tiny`` in its own process group, killed whole if it overruns."""
    proc = subprocess.Popen(
        [sys.executable, str(RUN), "--tiny", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the tiny benchmark did not finish within {timeout:.0f} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def positive(row: Dict[str, Any], *names: str) -> None:
    for name in names:
        assert isinstance(row[name], (int, float)) and row[name] > 0, (name, row)


@pytest.mark.slow
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = run_tiny(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| client |" in done.stdout
    results = json.loads(out.read_text())

    assert results["errors"] == {}
    meta = results["meta"]
    assert meta["python"] and meta["cpu"] and meta["cores"] >= 1 and meta["packages"]["hf_textgen"]
    assert set(results["skipped"]) == {"hub", "hub-async", "openai", "openai-async"}

    measured = ["raw", "raw-asyncio", *OURS]
    for key in measured:
        positive(results["throughput"]["clients"][key], "events_per_s", "ratio_to_raw", "cpu_us_per_event", "server_cpu_s")
        positive(results["fixed_cost"]["clients"][key], "p50_ms", "p90_ms")
        for framing in ("chunked", "close"):
            positive(results["latency"][framing][key], "ttfe_ms", "p50_ms", "p99_ms", "max_ms")
        positive(results["peak_rss"]["clients"][key], "peak_mb")
        abandoned = results["abandon"]["clients"][key]
        assert abandoned["streams"] > 0 and abandoned["threads_after"] >= 1

    (load,) = results["concurrency"].values()
    for key in ["raw-asyncio", "hf_textgen-asyncio", "hf_textgen-trio"]:
        positive(load["clients"][key], "wall_s", "p50_ms", "p99_ms", "max_ms", "max_overlap")

    positive(results["import_time"]["ms"], "pass", "import requests", "import hf_textgen")
    assert {row["target"] for row in results["targets"]} and all("met" in row for row in results["targets"])


@pytest.mark.slow
def test_batch_bench_runs_end_to_end(tmp_path: Path) -> None:
    """tests/bench/batch.py --tiny: the batch job (ours only) and the input pass, shape only."""
    out = tmp_path / "batch.json"
    done = subprocess.run([sys.executable, str(RUN.parent / "batch.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| client |" in done.stdout and "| rows |" in done.stdout
    results = json.loads(out.read_text())
    assert set(results["spread"]) == {"hf_textgen", "hf_textgen-nostream"}
    for row in results["spread"].values():
        positive(row, "rows_per_s", "cpu_ms_per_row", "peak_rss_mb", "requests")
        assert row["ok"] == results["meta"]["plan"]["rows"] and row["failed"] == 0
        assert row["rate_limited"] > 0  # the first provider answers 429 to some
    for size, row in results["scan"].items():
        assert row["rows"] == row["todo"] == int(size) and row["bad"] == row["id_problems"] == 0
        positive(row, "peak_rss_mb", "file_mb")
