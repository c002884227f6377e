"""Batch jobs: thousands of prompts from a JSONL file, answered on one event loop, resumable.

    from hf_textgen import batch

    summary = batch.run("prompts.jsonl", "answers.jsonl", model="meta-llama/Llama-3.3-70B-Instruct",
                        concurrency=16, retries=2, progress=batch.Printer())
    summary = await batch.run_async(...)          # the same, inside asyncio or trio

Input: one JSON object a line, ``{"id": ..., "messages": [...]}`` or ``{"id": ..., "prompt": "..."}``
with any parameter of ``Client.create_completion`` (:mod:`.rows`). Output: one JSON object a line per
finished row, in completion order (:mod:`.records`); rerunning with the same output resumes
(:mod:`.output`). Load is spread over the model's providers by adaptive shares (:mod:`.shares`).
From a shell: ``hf-textgen batch IN.jsonl -o OUT.jsonl`` or ``python -m hf_textgen.batch``
(:mod:`.command`).

Modules, in the direction data flows: :mod:`.rows` (input lines -> rows), :mod:`.scan` (the first
pass), :mod:`.output` (the output file, resume), :mod:`.shares` (AIMD per provider),
:mod:`.records` (output rows), :mod:`.stats` (counters, Summary), :mod:`.job` (the rows on the event
loop), :mod:`.runner` (``run``, ``run_async``), :mod:`.progress` (the display), :mod:`.command`.

``import hf_textgen`` does not import this package; its names are imported on first use (anyio with
``run`` or ``run_async``), so ``hf_textgen.batch.command`` loads the standard library only.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["run", "run_async", "Summary", "Snapshot", "ProviderStats", "Printer", "format_summary",
           "BatchInputError", "ROW_FIELDS"]

_HOMES = {"run": "runner", "run_async": "runner", "Summary": "stats", "Snapshot": "stats", "ProviderStats": "stats",
          "Printer": "progress", "format_summary": "progress", "BatchInputError": "scan", "ROW_FIELDS": "rows"}


def __getattr__(name: str) -> Any:
    """Each name is imported on first use, so ``hf_textgen.batch.command`` loads nothing else."""
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'hf_textgen.batch' has no attribute {name!r}")


def __dir__() -> "list[str]":
    return sorted([*globals(), *__all__])
