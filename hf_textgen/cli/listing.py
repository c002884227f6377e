"""``hf-textgen models`` and ``hf-textgen mapping MODEL``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from .exits import EXIT_OK, PROG
from .notices import Notices


def write(text: str) -> None:
    """``text`` and a newline on stdout (nothing for empty text)."""
    sys.stdout.write(text + "\n" if text else "")
    sys.stdout.flush()


def cmd_models(args: argparse.Namespace, notices: Notices) -> int:
    """The chat models, one per line; when the Hub cannot list them, the built-in list, said so on
    stderr. With a catalogue filter or ``--sort``: the router's catalogue, each model with the
    providers that qualify."""
    if args.provider or args.tools or args.structured or args.min_context or args.sort:
        return _catalog_models(args)
    from hf_textgen import HuggingFaceAPI
    from hf_textgen.errors import redact, shorten

    failures: List[Exception] = []
    models = HuggingFaceAPI.get_models(refresh=args.refresh, on_fallback=failures.append)
    if failures:
        error = failures[0]
        notices.discard(lambda value: value is error)  # the library logged it too: say it once, here
        sys.stderr.write(
            f"{PROG}: warning: could not list the models from the Hub ({shorten(redact(str(error)))}); "
            f"showing the built-in list of {len(models)} common chat models instead\n"
        )
        sys.stderr.flush()
    write(json.dumps(models, indent=2) if args.json else "\n".join(models))
    return EXIT_OK


def _catalog_models(args: argparse.Namespace) -> int:
    from hf_textgen import HuggingFaceAPI
    from hf_textgen.selection import filter_models

    found = filter_models(
        HuggingFaceAPI.list_catalog(refresh=args.refresh), provider=args.provider, tools=args.tools,
        structured=args.structured, min_context=args.min_context, sort=args.sort,
    )
    if args.json:
        write(json.dumps([dataclasses.asdict(entry) for entry in found], indent=2))
    else:
        width = max((len(entry.model) for entry in found), default=0)
        write("\n".join(f"{entry.model.ljust(width)}  {', '.join(p.provider for p in entry.providers)}" for entry in found))
    if not found:
        sys.stderr.write(f"{PROG}: no model of the router's catalogue meets those conditions\n")
    return EXIT_OK


def cmd_mapping(args: argparse.Namespace, notices: Notices) -> int:
    """The providers of one model, in the user's order, with what the router's catalogue says of
    each (context, prices, tools, structured output, speed; ``?`` where it says nothing)."""
    from hf_textgen import HuggingFaceAPI
    from hf_textgen.errors import HFTextGenError, shorten

    model = HuggingFaceAPI.get_model(args.model)
    mapping = HuggingFaceAPI.get_mapping_sync(model)
    catalog: Any = None
    try:
        catalog = HuggingFaceAPI.get_catalog_sync(model)
    except HFTextGenError as error:
        sys.stderr.write(f"{PROG}: note: the router's catalogue is not available ({shorten(str(error), 160)}); the Hub mapping alone\n")
    if args.json:
        merged = {name: {**entry, "catalog": _entry(catalog, name)} for name, entry in mapping.items()}
        write(json.dumps(merged, indent=2, ensure_ascii=False))
    else:
        write(format_mapping(mapping, catalog))
    if not mapping:
        sys.stderr.write(f"{PROG}: no inference provider serves {model}\n")
    return EXIT_OK


def _entry(catalog: Any, provider: str) -> Optional[Dict[str, Any]]:
    found = catalog.get(provider) if catalog is not None else None
    return None if found is None else {k: v for k, v in dataclasses.asdict(found).items() if k != "provider"}


def _known(value: Any, show: Callable[[Any], str] = str) -> str:
    if value is None:
        return "?"
    if value is True or value is False:
        return "yes" if value else "no"
    return show(value)


#: Column title, and the cell of a provider (mapping entry, catalogue entry or None).
COLUMNS: Tuple[Tuple[str, Callable[[str, Dict[str, Any], Any], str]], ...] = (
    ("PROVIDER", lambda name, entry, known: name),
    ("STATUS", lambda name, entry, known: entry.get("status") or "-"),
    ("TASK", lambda name, entry, known: entry.get("task") or "-"),
    ("PROVIDER ID", lambda name, entry, known: entry.get("providerId") or "-"),
    ("CONTEXT", lambda name, entry, known: _known(known and known.context_length)),
    ("IN $/M", lambda name, entry, known: _known(known and known.input_price, lambda v: f"{v:g}")),
    ("OUT $/M", lambda name, entry, known: _known(known and known.output_price, lambda v: f"{v:g}")),
    ("TOOLS", lambda name, entry, known: _known(known and known.supports_tools)),
    ("JSON", lambda name, entry, known: _known(known and known.supports_structured_output)),
    ("FIRST TOKEN", lambda name, entry, known: _known(known and known.first_token_latency_ms, lambda v: f"{v:g} ms")),
    ("TOKENS/S", lambda name, entry, known: _known(known and known.throughput, lambda v: f"{v:g}")),
)


def format_mapping(mapping: Dict[str, Dict[str, Any]], catalog: Any = None) -> str:
    """The mapping as an aligned text table; the catalogue's columns only when it was read."""
    columns = COLUMNS if catalog is not None else COLUMNS[:4]
    rows = [[title for title, _ in columns]]
    for name, entry in mapping.items():
        known = catalog.get(name) if catalog is not None else None
        rows.append([cell(name, entry, known) for _, cell in columns])
    widths = [max(len(row[column]) for row in rows) for column in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
