"""The batch benchmark: hf_textgen.batch against the usual way, and the input pass's memory.

    python tests/bench/batch.py [--quick | --tiny] [--out FILE] [--no-peers]

1. N rows of short answers against the stand-in (its own process), the model on three providers,
   the first answering 429 to 30% of requests: each client in a fresh process (``batch_jobs.py``),
   the same concurrency and retries; rounds interleaved, medians. rows/s, CPU ms per row (the job
   alone), peak RSS, 429s seen, requests sent. Ratios are to hf_textgen.batch in the same run.
2. The input pass alone (ids and validation) over generated files of two sizes: peak RSS.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import report

HERE = Path(__file__).resolve().parent
JOBS = str(HERE / "batch_jobs.py")
CLIENTS = ["hf_textgen", "hf_textgen-nostream", "hub", "openai"]
LABELS = {"hf_textgen": "hf_textgen.batch (streamed rows)", "hf_textgen-nostream": "hf_textgen.batch (rows with stream: false)",
          "hub": "huggingface_hub AsyncInferenceClient, gather + semaphore", "openai": "openai AsyncOpenAI, gather + semaphore"}


@dataclass(frozen=True)
class Plan:
    name: str
    rows: int
    rounds: int
    concurrency: int
    retries: int
    rate: float
    scan_sizes: Tuple[int, int]
    peers: bool = True


PLANS = {
    "full": Plan("full", 10_000, 2, 32, 2, 0.3, (10_000, 1_000_000)),
    "quick": Plan("quick", 2_000, 1, 32, 2, 0.3, (10_000, 200_000)),
    "tiny": Plan("tiny", 60, 1, 8, 2, 0.3, (1_000, 5_000), peers=False),
}


def child(*args: str, timeout: float = 900) -> Dict[str, Any]:
    done = subprocess.run([sys.executable, JOBS, *args], capture_output=True, text=True, timeout=timeout, cwd=HERE)
    if done.returncode != 0:
        raise RuntimeError(f"batch_jobs.py {args[0]} {args[1]} failed ({done.returncode}): {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_input(path: Path, rows: int, **extra: Any) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for n in range(rows):
            out.write(json.dumps({"id": f"row-{n:07d}", "prompt": f"Summarise ticket {n} in one sentence.", "max_tokens": 64, **extra}) + "\n")


def spread(plan: Plan, clients: List[str], work: Path) -> Dict[str, Any]:
    inputs = {"hf_textgen": work / "in.jsonl", "hf_textgen-nostream": work / "in-nostream.jsonl"}
    write_input(inputs["hf_textgen"], plan.rows)
    write_input(inputs["hf_textgen-nostream"], plan.rows, stream=False)
    server = subprocess.Popen([sys.executable, JOBS, "stub", str(plan.rate)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=HERE)
    try:
        assert server.stdout is not None and server.stdin is not None
        hello = json.loads(server.stdout.readline())
        results: Dict[str, List[Dict[str, Any]]] = {key: [] for key in clients}
        for number in range(plan.rounds):
            for key in clients[number % len(clients):] + clients[:number % len(clients)]:
                output = work / f"out-{key}-{number}.jsonl"
                print(f"... {key}, round {number + 1}", file=sys.stderr, flush=True)
                source = inputs.get(key, inputs["hf_textgen"])
                results[key].append(child("job", key, hello["url"], str(source), str(output), str(plan.concurrency),
                                          str(plan.retries), hello["provider_id"]))
                server.stdin.write("clear\n")
                server.stdin.flush()
                server.stdout.readline()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)
    return {key: summarise(rounds, plan.rows) for key, rounds in results.items()}


def summarise(rounds: List[Dict[str, Any]], rows: int) -> Dict[str, Any]:
    wall = statistics.median(r["wall_s"] for r in rounds)
    row = {name: statistics.median(r[name] for r in rounds) for name in ("wall_s", "cpu_s", "peak_rss_mb", "ok", "failed", "rate_limited", "requests")}
    row.update(rows_per_s=rows / wall, cpu_ms_per_row=row["cpu_s"] * 1000 / rows, rounds=len(rounds))
    for extra in ("answered", "lowest_share"):
        if extra in rounds[-1]:
            row[extra] = rounds[-1][extra]
    return row


def scan_rss(plan: Plan, work: Path) -> Dict[str, Any]:
    out = {}
    for size in plan.scan_sizes:
        path = work / f"scan-{size}.jsonl"
        write_input(path, size)
        print(f"... input pass, {size:,} rows", file=sys.stderr, flush=True)
        result = child("scan", str(path), timeout=1800)
        result["file_mb"] = path.stat().st_size / 1e6
        path.unlink()
        out[str(size)] = result
    return out


def tables(results: Dict[str, Any]) -> str:
    plan = results["meta"]["plan"]
    num = report.num
    ours = results["spread"].get("hf_textgen", {})
    rows = []
    for key, row in results["spread"].items():
        ratio = row["rows_per_s"] / ours["rows_per_s"] if ours else None
        rows.append([LABELS[key], num(row["rows_per_s"]), num(ratio), num(row["cpu_ms_per_row"]), num(row["peak_rss_mb"]),
                     f"{row['ok']:,.0f} / {row['failed']:,.0f}", num(row["rate_limited"]), num(row["requests"])])
    first = (f"## Batch: {plan['rows']:,} rows, three providers, the first answering 429 to {plan['rate']:.0%} of requests\n\n"
             f"concurrency {plan['concurrency']}, retries {plan['retries']}; medians of {plan['rounds']} round(s); "
             "the usual way is pinned to the first provider (the user's first choice) and retries 429s with backoff.\n\n")
    first += report.table(["client", "rows/s", "× hf_textgen.batch", "CPU ms/row", "peak RSS MB", "rows ok / failed",
                           "429s seen", "requests sent"], rows)
    if ours.get("answered"):
        first += "\n\nhf_textgen.batch, rows answered per provider: " + ", ".join(f"{name} {count:,}" for name, count in ours["answered"].items())
        first += "; lowest share: " + ", ".join(f"{name} {share:g}" for name, share in ours["lowest_share"].items() if share is not None)
    scans = results["scan"]
    rows = [[f"{int(size):,}", num(r["file_mb"]), num(r["wall_s"]), num(r["cpu_s"]), num(r["rss_before_mb"]), num(r["peak_rss_mb"]),
             num(r["peak_rss_mb"] - r["rss_before_mb"])] for size, r in scans.items()]
    second = "## The input pass alone (ids and validation), a fresh process per file\n\n" + report.table(
        ["rows", "file MB", "wall s", "CPU s", "RSS before MB", "peak RSS MB", "growth MB"], rows)
    return first + "\n\n" + second


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args(argv)
    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    clients = CLIENTS if plan.peers and not args.no_peers else CLIENTS[:2]
    started = time.perf_counter()
    results: Dict[str, Any] = {"meta": report.environment(sys.argv, asdict(plan))}
    print(f"# hf_textgen batch benchmark ({plan.name}), {results['meta']['date']}, {results['meta']['cpu']}, "
          f"{results['meta']['cores']} cores, Python {results['meta']['python']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hf_textgen-batch-bench-") as work:
        results["spread"] = spread(plan, clients, Path(work))
        results["scan"] = scan_rss(plan, Path(work))
    results["meta"]["runtime_s"] = time.perf_counter() - started
    print(tables(results))
    print(f"\nruntime {results['meta']['runtime_s']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
