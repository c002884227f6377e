"""``hf-textgen models`` and ``hf-textgen mapping MODEL``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

from .exits import EXIT_OK, PROG
from .notices import Notices


def write(text: str) -> None:
    """``text`` and a newline on stdout (nothing for empty text)."""
    sys.stdout.write(text + "\n" if text else "")
    sys.stdout.flush()


def cmd_models(args: argparse.Namespace, notices: Notices) -> int:
    """The chat models, one per line; when the Hub cannot list them, the built-in list, said so on stderr."""
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


def cmd_mapping(args: argparse.Namespace, notices: Notices) -> int:
    """The providers of one model, in the user's order."""
    from hf_textgen import HuggingFaceAPI

    model = HuggingFaceAPI.get_model(args.model)
    mapping = HuggingFaceAPI.get_mapping_sync(model)
    write(json.dumps(mapping, indent=2, ensure_ascii=False) if args.json else format_mapping(mapping))
    if not mapping:
        sys.stderr.write(f"{PROG}: no inference provider serves {model}\n")
    return EXIT_OK


MAPPING_COLUMNS = (("PROVIDER", None), ("STATUS", "status"), ("TASK", "task"), ("PROVIDER ID", "providerId"))


def format_mapping(mapping: Dict[str, Dict[str, Any]]) -> str:
    """The mapping as an aligned text table: provider, status, task, providerId."""
    rows = [[title for title, _ in MAPPING_COLUMNS]]
    for provider, entry in mapping.items():
        rows.append([provider] + [str(entry.get(key) or "-") for _, key in MAPPING_COLUMNS[1:]])
    widths = [max(len(row[column]) for row in rows) for column in range(len(MAPPING_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
