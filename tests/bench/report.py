"""What a run prints and writes: the environment header, markdown tables, the targets, the JSON."""
from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from clients import LABELS

PACKAGES = ["hf_textgen", "requests", "urllib3", "sseclient-py", "anyio", "trio", "huggingface_hub", "openai", "httpx", "httpx2"]
Row = Dict[str, Any]


def label(key: str) -> str:
    return LABELS.get(key, key)


# --------------------------------------------------------------------------------------------------
# Environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def package_versions() -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment(argv: List[str], plan: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "command": " ".join(["python", *argv]),
        "plan": plan,
    }


def header(meta: Dict[str, Any], skipped: Dict[str, str]) -> str:
    plan = meta["plan"]
    packages = " · ".join(f"{name} {version}" for name, version in meta["packages"].items() if version)
    lines = [
        f"# hf_textgen benchmark ({plan['name']})",
        "",
        f"- date: {meta['date']} · machine: {meta['cpu']}, {meta['cores']} cores ({meta['platform']}) · Python {meta['python']}",
        f"- packages: {packages}",
        f"- command: `{meta['command']}`",
        f"- method: loopback server (asyncio, own process) and one worker process per client; rounds interleaved, "
        f"warm-up rounds discarded: {plan['warmup']}, medians of {plan['rounds']} measured rounds "
        f"({plan['concurrency_rounds']} for concurrency, after one small warm-up load); "
        f"server scheduling: {meta['server_scheduling']}",
    ]
    lines += [f"- skipped: {label(key)}: {why}" for key, why in skipped.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Tables


def num(value: Any) -> str:
    """Three significant digits, thousands separated; blanks for what was not measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def triple(row: Optional[Row], *names: str) -> str:
    return " / ".join(num((row or {}).get(name)) for name in names) if row else "–"


def table(headings: Sequence[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join("---" for _ in headings) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def section_clients(results: Dict[str, Any], *path: str) -> Dict[str, Row]:
    node: Any = results
    for step in path:
        node = (node or {}).get(step)
    return node or {}


def one_stream_table(results: Dict[str, Any]) -> str:
    speed = section_clients(results, "throughput", "clients")
    fixed = section_clients(results, "fixed_cost", "clients")
    chunked = section_clients(results, "latency", "chunked")
    close = section_clients(results, "latency", "close")
    rss = section_clients(results, "peak_rss", "clients")
    keys = list(dict.fromkeys([*speed, *fixed, *chunked, *close, *rss]))
    rows = [
        [
            label(key),
            num(speed.get(key, {}).get("events_per_s")),
            num(speed.get(key, {}).get("ratio_to_raw")),
            num(speed.get(key, {}).get("cpu_us_per_event")),
            triple(fixed.get(key), "p50_ms", "p90_ms"),
            num(chunked.get(key, {}).get("ttfe_ms")),
            triple(chunked.get(key), "p50_ms", "p99_ms", "max_ms"),
            triple(close.get(key), "p50_ms", "p99_ms", "max_ms"),
            num(rss.get(key, {}).get("peak_mb")),
        ]
        for key in keys
    ]
    plan = results["meta"]["plan"]
    heading = (
        f"## One stream\n\nevents/s and CPU: one stream of {plan['throughput_events']:,} events, no gap. "
        f"Short stream: {plan['fixed_events']} events, whole time, {plan['fixed_streams']} in a row. "
        f"Latency: {plan['latency_events']} events {plan['latency_gap_ms']:g} ms apart, time from the server's send "
        f"to the client's hands; first event: from the call. Peak RSS: a fresh process, one {plan['rss_events']:,}-event stream.\n"
    )
    return heading + "\n" + table(
        ["client", "events/s", "× raw", "CPU µs/event", "short stream p50 / p90 ms", "first event ms",
         "latency chunked p50 / p99 / max ms", "latency close-delimited p50 / p99 / max ms", "peak RSS MB"],
        rows,
    )


def concurrency_table(results: Dict[str, Any]) -> str:
    rows = []
    for load, block in (results.get("concurrency") or {}).items():
        for key, row in block["clients"].items():
            rows.append([
                f"{load} (ideal {block['ideal_s']:g} s)",
                label(key),
                num(row.get("wall_s")),
                triple(row, "p50_ms", "p99_ms", "max_ms"),
                num(row.get("max_overlap")),
                num(row.get("start_max_ms")),
                f"{num(row.get('threads_before'))} → {num(row.get('threads_peak'))}",
                f"{num(row.get('rss_added_mb'))} / {num(row.get('rss_added_mb', 0) * 1024 / block['streams'])}",
                f"{num(row.get('sockets_before'))} → {num(row.get('sockets_after'))}",
                f"{num(row.get('server_cpu_s'))} / {num(row.get('server_late_max_ms'))}",
            ])
    return "## Concurrent streams on one event loop\n\n" + table(
        ["streams × events × gap", "client", "wall s", "latency p50 / p99 / max ms", "most overlapping",
         "last first event ms", "threads before → peak", "RSS added MB / KB per stream", "sockets before → after",
         "server CPU s / late max ms"],
        rows,
    )


def abandon_table(results: Dict[str, Any]) -> str:
    block = results.get("abandon") or {}
    rows = [
        [
            label(key),
            f"{row['threads_before']:.0f} → {row['threads_after']:.0f}",
            f"{row['sockets_before']:.0f} → {row['sockets_after']:.0f}",
            f"{row['server_open_before']:.0f} → {row['server_open_after']:.0f}",
        ]
        for key, row in (block.get("clients") or {}).items()
    ]
    heading = f"## {block.get('streams', 0):,} streams abandoned after their first event (`break`), then gc and ≤ 2 s to settle\n\n"
    return heading + table(["client", "threads", "sockets", "server's open connections"], rows)


def import_table(results: Dict[str, Any]) -> str:
    block = results.get("import_time") or {}
    rows = [[f"`python -c \"{statement}\"`", num(ms)] for statement, ms in (block.get("ms") or {}).items()]
    also = block.get("hf_textgen_also_imports") or "none of anyio, trio, httpx"
    return f"## Import time (median of {block.get('runs')})\n\n" + table(["command", "ms"], rows) + f"\n\n`import hf_textgen` also loads: {also}"


def server_line(results: Dict[str, Any]) -> str:
    """Evidence that the server is not the bottleneck."""
    speed = section_clients(results, "throughput", "clients")
    raw = speed.get("raw")
    if not raw:
        return ""
    events = results["throughput"]["events"]
    fastest = max((row["events_per_s"] for key, row in speed.items() if key not in ("raw", "raw-asyncio")), default=None)
    lines = [
        "## The server is not the bottleneck\n",
        f"- while feeding the raw reader: {raw['server_cpu_s'] / events * 1e6:.2f} µs server CPU per event, "
        f"busy {raw['server_cpu_s'] / raw['wall_s']:.0%} of the stream's {raw['wall_s'] * 1000:.0f} ms",
    ]
    if fastest:
        lines.append(f"- the raw reader ({num(raw['events_per_s'])} events/s) is {raw['events_per_s'] / fastest:.1f}× the fastest client")
    loads = results.get("concurrency") or {}
    late = [row.get("server_late_max_ms", 0) for block in loads.values() for row in block["clients"].values()]
    if late:
        lines.append(f"- concurrency runs: the server's events were at most {max(late):.1f} ms late on their schedule")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Targets of the core (#3) and async (#5) issues

Target = Callable[[Dict[str, Any]], Optional[float]]


def pick(*path: str) -> Target:
    def get(results: Dict[str, Any]) -> Optional[float]:
        node: Any = results
        for step in path:
            if not isinstance(node, dict) or step not in node:
                return None
            node = node[step]
        return node

    return get


def leftover(key: str) -> Target:
    """Threads plus sockets left above the baseline after the abandoned streams."""

    def get(results: Dict[str, Any]) -> Optional[float]:
        row = section_clients(results, "abandon", "clients").get(key)
        if not row:
            return None
        return max(0, row["threads_after"] - row["threads_before"]) + max(0, row["sockets_after"] - row["sockets_before"])

    return get


TARGETS: List[tuple] = [
    ("sync, one stream: events/s vs raw", "≥ 0.6×", pick("throughput", "clients", "hf_textgen", "ratio_to_raw"), lambda v: v >= 0.6),
    *[
        (f"async ({b}), one stream: events/s vs raw", "≥ 0.5×", pick("throughput", "clients", f"hf_textgen-{b}", "ratio_to_raw"), lambda v: v >= 0.5)
        for b in ("asyncio", "trio")
    ],
    *[
        row
        for b in ("asyncio", "trio")
        for row in [
            (f"async ({b}), 200×200×5ms: wall s", "≤ 1.5 s", pick("concurrency", "200x200x5ms", "clients", f"hf_textgen-{b}", "wall_s"), lambda v: v <= 1.5),
            (f"async ({b}), 200×200×5ms: latency p99 ms", "≤ 50 ms", pick("concurrency", "200x200x5ms", "clients", f"hf_textgen-{b}", "p99_ms"), lambda v: v <= 50),
            (f"async ({b}), 200×200×5ms: last stream's first event ms", "≤ 200 ms", pick("concurrency", "200x200x5ms", "clients", f"hf_textgen-{b}", "start_max_ms"), lambda v: v <= 200),
            (f"async ({b}), 200×100×20ms: wall s", "≤ 2.2 s", pick("concurrency", "200x100x20ms", "clients", f"hf_textgen-{b}", "wall_s"), lambda v: v <= 2.2),
        ]
    ],
    *[
        (f"{label(k)}: threads + sockets left after abandoned streams", "0 (baseline)", leftover(k), lambda v: v == 0)
        for k in ("hf_textgen", "hf_textgen-asyncio", "hf_textgen-trio")
    ],
]


def vs_raw_asyncio(load: str, key: str, field: str) -> Target:
    """A client's figure on a concurrency load divided by raw asyncio's in the same run."""

    def get(results: Dict[str, Any]) -> Optional[float]:
        clients_ = pick("concurrency", load, "clients")(results) or {}
        ours, raw = (clients_.get(key) or {}).get(field), (clients_.get("raw-asyncio") or {}).get(field)  # type: ignore[union-attr]
        return ours / raw if ours is not None and raw else None

    return get


def import_ratio(statement: str) -> Target:
    """``python -c STATEMENT`` minus a bare interpreter, divided by the same for ``import requests``."""

    def get(results: Dict[str, Any]) -> Optional[float]:
        ms = pick("import_time", "ms")(results) or {}
        bare, requests_ = ms.get("pass"), ms.get("import requests")  # type: ignore[union-attr]
        ours = ms.get(statement)  # type: ignore[union-attr]
        return (ours - bare) / (requests_ - bare) if None not in (ours, bare, requests_) and requests_ > bare else None

    return get


def load_of(results: Dict[str, Any], streams: int) -> str:
    """The key of the concurrency load with that many streams and the most events (the plan's)."""
    keys = [k for k in (results.get("concurrency") or {}) if k.startswith(f"{streams}x")]
    return keys[-1] if keys else f"{streams}x?"


def scale_targets(results: Dict[str, Any]) -> List[tuple]:
    """The targets of the async-at-scale issue, as ratios to raw asyncio measured in the same run."""
    rows: List[tuple] = []
    for streams in (200, 1000):
        load = load_of(results, streams) if streams == 1000 else "200x200x5ms"
        for b in ("asyncio", "trio"):
            key = f"hf_textgen-{b}"
            rows += [
                (f"async ({b}), {load}: wall / raw asyncio's", "≤ 1.1×", vs_raw_asyncio(load, key, "wall_s"), lambda v: v <= 1.1),
                (f"async ({b}), {load}: p99 / raw asyncio's", "≤ 3×", vs_raw_asyncio(load, key, "p99_ms"), lambda v: v <= 3),
                (f"async ({b}), {load}: last first event / raw asyncio's", "≤ 3×", vs_raw_asyncio(load, key, "start_max_ms"), lambda v: v <= 3),
            ]
    rows += [
        (f"async ({b}), one stream: events/s vs raw", "≥ 0.65×", pick("throughput", "clients", f"hf_textgen-{b}", "ratio_to_raw"), lambda v: v >= 0.65)
        for b in ("asyncio", "trio")
    ]
    rows += [
        ("`import hf_textgen` vs `import requests` (minus a bare interpreter)", "≤ 1.15×", import_ratio("import hf_textgen"), lambda v: v <= 1.15),
        ("`from hf_textgen import HuggingFaceAPI, Client` vs `import requests`", "≤ 1.15×",
         import_ratio("from hf_textgen import HuggingFaceAPI, Client"), lambda v: v <= 1.15),
    ]
    return rows


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = []
    for name, goal, get, check in TARGETS + scale_targets(results):
        value = get(results)
        out.append({"target": name, "goal": goal, "measured": value, "met": None if value is None else bool(check(value))})
    return out


def targets_table(rows: List[Dict[str, Any]]) -> str:
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    return "## Targets (the core, async and async-at-scale issues)\n\n" + table(
        ["measure", "target", "measured", ""], [[r["target"], r["goal"], num(r["measured"]), verdict[r["met"]]] for r in rows]
    )


def tables(results: Dict[str, Any]) -> str:
    results["targets"] = targets(results)
    parts = [
        one_stream_table(results),
        concurrency_table(results),
        abandon_table(results),
        import_table(results),
        server_line(results),
        targets_table(results["targets"]),
        f"runtime: {results['meta']['runtime_s']:.0f} s",
    ]
    errors = results.get("errors") or {}
    if errors:
        parts.append("## Errors\n\n" + "\n".join(f"- {label(k)}: {s}: {e.splitlines()[0]}" for k, v in errors.items() for s, e in v.items()))
    return "\n\n".join(p for p in parts if p)


def finite(value: Any) -> Any:
    """JSON has no NaN: what was not measured becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_json(results: Dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(finite(results), indent=2, allow_nan=False) + "\n")
