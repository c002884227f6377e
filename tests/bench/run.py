"""hf_textgen's benchmark: the library side by side with a raw-socket reader and its peers.

    python tests/bench/run.py [--quick | --tiny] [--out FILE] [--clients KEY,...] [--no-peers]

One loopback server process (server.py) and one long-lived worker process per client (worker.py).
Rounds are interleaved (every client once per round, in a rotating order), the first round(s) are
a discarded warm-up, and figures are medians over the rounds. Prints markdown tables and writes JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import clients
import report
from clients import stream_spec
from procs import Child, ChildError, stop_all

Load = Tuple[int, int, float]  # streams, events per stream, gap (ms)
Rounds = Dict[str, List[Optional[Dict[str, Any]]]]  # client -> one result per measured round


@dataclass(frozen=True)
class Plan:
    """How much of everything one run does."""

    name: str
    rounds: int
    warmup: int
    throughput_events: int
    fixed_streams: int
    fixed_events: int
    latency_events: int
    latency_gap_ms: float
    loads: Tuple[Load, ...]
    concurrency_rounds: int
    warmup_load: Load
    abandon_streams: int
    import_runs: int
    rss_events: int
    peers: bool = True


PLANS = {
    "full": Plan("full", 5, 1, 20_000, 200, 5, 200, 5.0, ((200, 200, 5.0), (200, 100, 20.0), (1000, 100, 50.0)), 5, (200, 20, 5.0), 1000, 9, 20_000),
    "quick": Plan("quick", 3, 1, 5_000, 50, 5, 40, 5.0, ((200, 200, 5.0), (200, 100, 20.0), (1000, 40, 50.0)), 1, (200, 20, 5.0), 200, 5, 5_000),
    "tiny": Plan("tiny", 1, 0, 300, 3, 3, 5, 2.0, ((5, 5, 5.0),), 1, (2, 2, 1.0), 5, 1, 300, peers=False),
}
ABANDON_STREAM = (30, 2000.0)  # events, gap (ms): a stream that stalls after its first event


def load_key(load: Load) -> str:
    streams, events, gap = load
    return f"{streams}x{events}x{gap:g}ms"


class Bench:
    """The server, the workers, and what they measured."""

    def __init__(self, plan: Plan, keys: List[str], logs: Path) -> None:
        self.plan = plan
        self.keys = keys
        self.logs = logs
        self.server = Child("server.py", ["--realtime"], logs / "server.log").ready(30)
        self.url = f"http://127.0.0.1:{self.server.hello['port']}"
        self.workers: Dict[str, Child] = {}
        self.errors: Dict[str, Dict[str, str]] = {}
        self.start_workers(keys)

    # processes ------------------------------------------------------------------------------------

    def start_workers(self, keys: List[str]) -> None:
        """Start the missing workers together (imports in parallel), then wait for each."""
        spawned = {key: self.spawn(key, f"{key}.log") for key in keys if key not in self.workers}
        for key, child in spawned.items():
            try:
                self.workers[key] = child.ready(120)
            except ChildError as exc:
                self.fail(key, "start", exc)

    def spawn(self, key: str, log: str) -> Child:
        return Child("worker.py", [key, self.url], self.logs / log)

    def server_stats(self, reset: bool = False) -> Dict[str, Any]:
        return self.server.ask({"op": "stats", "reset": reset}, 10)

    def fail(self, key: str, section: str, exc: Exception) -> None:
        self.errors.setdefault(key, {})[section] = str(exc)
        print(f"  ! {report.label(key)}: {section}: {exc}", file=sys.stderr)

    def call(self, key: str, section: str, op: str, args: Dict[str, Any], limit_s: float) -> Optional[Dict[str, Any]]:
        """One operation in ``key``'s worker, with the server's CPU time and lateness during it.
        A failure is recorded (and a dead worker restarted for the next call)."""
        if key not in self.workers:
            self.start_workers([key])
            if key not in self.workers:
                return None
        before = self.server_stats(reset=True)
        try:
            result = self.workers[key].ask({"op": op, "args": args, "limit_s": limit_s}, limit_s + 30)
        except ChildError as exc:
            self.fail(key, section, exc)
            if not self.workers[key].alive():
                del self.workers[key]
            return None
        after = self.server_stats()
        result["server_cpu_s"] = after["cpu_s"] - before["cpu_s"]
        result["server_late_max_ms"] = after["late_max_ms"]
        result["server_open_before"], result["server_open_after"] = before["open"], after["open"]
        return result

    def stop(self) -> None:
        for child in [*self.workers.values(), self.server]:
            child.stop()

    # rounds ---------------------------------------------------------------------------------------

    def rounds(self, section: str, keys: List[str], op: str, args: Dict[str, Any], limit_s: float, rounds: int, warmup: int) -> Rounds:
        """Interleaved rounds: each client once per round, the order rotating; warm-ups dropped.
        A client that fails is left out of the rest of the section."""
        results: Rounds = {key: [] for key in keys}
        failed: set = set()
        for number in range(warmup + rounds):
            for key in rotate(keys, number):
                if key in failed:
                    continue
                result = self.call(key, section, op, args, limit_s)
                if result is None:
                    failed.add(key)
                if number >= warmup:
                    results[key].append(result)
        return results

    # sections -------------------------------------------------------------------------------------

    def throughput(self) -> Dict[str, Any]:
        events = self.plan.throughput_events
        args = {"spec": stream_spec(events), "events": events}
        results = self.rounds("throughput", self.keys, "throughput", args, 300, self.plan.rounds, self.plan.warmup)
        raw = results.get("raw", [])
        summary = {}
        for key, per_round in results.items():
            row = medians(per_round)
            ratios = [r["events_per_s"] / b["events_per_s"] for r, b in zip(per_round, raw) if r and b]
            if row and ratios:
                row["ratio_to_raw"] = statistics.median(ratios)
                row["ratio_per_round"] = ratios
            if row:
                summary[key] = row
        return {"events": events, "clients": summary}

    def fixed(self) -> Dict[str, Any]:
        streams, events = self.plan.fixed_streams, self.plan.fixed_events
        args = {"spec": stream_spec(events), "streams": streams, "events": events}
        results = self.rounds("fixed", self.keys, "fixed", args, 120, self.plan.rounds, self.plan.warmup)
        return {"streams": streams, "events": events, "clients": summarise(results)}

    def latency(self) -> Dict[str, Any]:
        events, gap = self.plan.latency_events, self.plan.latency_gap_ms
        out: Dict[str, Any] = {"events": events, "gap_ms": gap}
        for framing in ("chunked", "close"):
            args = {"spec": stream_spec(events, gap, framing), "events": events}
            limit = events * gap / 1000 * 5 + 30
            results = self.rounds(f"latency {framing}", self.keys, "latency", args, limit, self.plan.rounds, self.plan.warmup)
            out[framing] = summarise(results)
        return out

    def concurrency(self) -> Dict[str, Any]:
        keys = [key for key in self.keys if key in clients.ASYNC]
        out: Dict[str, Any] = {}
        for label, load, rounds in [("warm-up", self.plan.warmup_load, 1)] + [(load_key(load), load, self.plan.concurrency_rounds) for load in self.plan.loads]:
            streams, events, gap = load
            args = {"spec": stream_spec(events, gap), "streams": streams, "events": events}
            limit = events * gap / 1000 * 10 + 60
            results = self.rounds(f"concurrency {label}", keys, "concurrency", args, limit, rounds, 0)
            if label != "warm-up":
                out[label] = {"streams": streams, "events": events, "gap_ms": gap, "ideal_s": events * gap / 1000, "clients": summarise(results)}
        return out

    def abandon(self) -> Dict[str, Any]:
        events, gap = ABANDON_STREAM
        streams = self.plan.abandon_streams
        args = {"spec": stream_spec(events, gap), "streams": streams}
        results = self.rounds("abandon", self.keys, "abandon", args, streams * 0.2 + 60, 1, 0)
        return {"streams": streams, "clients": summarise(results)}

    def rss(self) -> Dict[str, Any]:
        """Each client in a fresh process: import, one stream, peak RSS."""
        events = self.plan.rss_events
        args = {"spec": stream_spec(events), "events": events}
        spawned = {key: self.spawn(key, f"{key}.rss.log") for key in self.keys}
        out = {}
        for key, child in spawned.items():
            try:
                out[key] = child.ready(120).ask({"op": "rss", "args": args, "limit_s": 120}, 150)
            except ChildError as exc:
                self.fail(key, "rss", exc)
            finally:
                child.stop()
        return {"events": events, "clients": out}


def rotate(items: List[str], by: int) -> List[str]:
    by %= max(1, len(items))
    return items[by:] + items[:by]


def medians(per_round: List[Optional[Dict[str, Any]]]) -> Dict[str, Any]:
    """The median of every numeric field over the rounds a client completed."""
    done = [r for r in per_round if r]
    if not done:
        return {}
    row = {name: statistics.median(r[name] for r in done) for name in done[0] if isinstance(done[0][name], (int, float))}
    return {**row, "rounds": len(done)}


def summarise(results: Rounds) -> Dict[str, Dict[str, Any]]:
    return {key: row for key, row in ((key, medians(per_round)) for key, per_round in results.items()) if row}


def import_times(runs: int, modules: List[str]) -> Dict[str, Any]:
    """``python -c "import X"`` wall time (median of ``runs``, statements interleaved)."""
    # the bare package loads its names when first used: the second hf_textgen line is what a user pays
    statements = ["pass"] + [f"import {m}" for m in modules] + ["from hf_textgen import HuggingFaceAPI, Client"]
    times: Dict[str, List[float]] = {s: [] for s in statements}
    for number in range(runs + 1):
        for statement in rotate(statements, number):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True, timeout=60, capture_output=True)
            if number:  # the first pass warms the file cache
                times[statement].append((time.perf_counter() - start) * 1000)
    probe = "import sys, hf_textgen; print(','.join(m for m in ('anyio', 'trio', 'httpx') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], timeout=60, capture_output=True, text=True)
    return {
        "runs": runs,
        "ms": {s: statistics.median(t) for s, t in times.items()},
        "hf_textgen_also_imports": loaded.stdout.strip() if loaded.returncode == 0 else f"failed: {loaded.stderr[-200:]}",
    }


def choose_clients(plan: Plan, only: Optional[str], no_peers: bool) -> Tuple[List[str], Dict[str, str]]:
    """The clients to measure, and why the others are skipped."""
    wanted = only.split(",") if only else list(clients.FACTORIES)
    unknown = set(wanted) - set(clients.FACTORIES)
    if unknown:
        raise SystemExit(f"unknown clients {sorted(unknown)}; choose from {list(clients.FACTORIES)}")
    skipped = {}
    for key in wanted:
        missing = [m for m in clients.REQUIRES.get(key, []) if importlib.util.find_spec(m) is None]
        if key in clients.PEERS and (no_peers or not plan.peers):
            skipped[key] = "peers not requested (--no-peers or --tiny)"
        elif missing:
            skipped[key] = f"not installed: {', '.join(missing)} (pip install -e '.[test,bench]')"
    return [key for key in wanted if key not in skipped], skipped


def measure_all(bench: Bench, plan: Plan, keys: List[str]) -> Dict[str, Any]:
    """Every section, in an order that keeps the disruptive ones (abandoned streams) last."""
    modules = ["requests", "hf_textgen"] + sorted({clients.PEERS[k] for k in keys if k in clients.PEERS})
    sections = [
        ("import_time", lambda: import_times(plan.import_runs, modules)),
        ("throughput", bench.throughput),
        ("fixed_cost", bench.fixed),
        ("latency", bench.latency),
        ("concurrency", bench.concurrency),
        ("abandon", bench.abandon),
        ("peak_rss", bench.rss),
    ]
    out: Dict[str, Any] = {"section_s": {}}
    for name, section in sections:
        print(f"... {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        out[name] = section()
        out["section_s"][name] = round(time.perf_counter() - started, 1)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smaller run (under 2 minutes)")
    size.add_argument("--tiny", action="store_true", help="a few events, one round, no peers (smoke test)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--clients", help=f"comma-separated subset of: {','.join(clients.FACTORIES)}")
    parser.add_argument("--no-peers", action="store_true", help="skip huggingface_hub and openai")
    args = parser.parse_args(argv)
    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so children are stopped at exit

    keys, skipped = choose_clients(plan, args.clients, args.no_peers)
    started = time.perf_counter()
    results: Dict[str, Any] = {"meta": report.environment(sys.argv, asdict(plan)), "skipped": skipped}
    with tempfile.TemporaryDirectory(prefix="hf_textgen-bench-") as logs:
        bench = Bench(plan, keys, Path(logs))
        results["meta"]["server_scheduling"] = bench.server.hello["scheduling"]
        print(report.header(results["meta"], skipped), flush=True)
        try:
            results.update(measure_all(bench, plan, keys))
        finally:
            bench.stop()
            stop_all()
    results["errors"] = bench.errors
    results["meta"]["runtime_s"] = time.perf_counter() - started
    print(report.tables(results))
    if args.out:
        report.write_json(results, args.out)
        print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
