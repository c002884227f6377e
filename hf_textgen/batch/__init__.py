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

``import hf_textgen`` does not import this package, and importing it loads anyio only when ``run`` or
``run_async`` is first used, so ``hf_textgen.batch.command`` stays light.
"""
from __future__ import annotations

from typing import Any

from .progress import Printer, format_summary
from .rows import ROW_FIELDS
from .scan import BatchInputError
from .stats import ProviderStats, Snapshot, Summary

__all__ = ["run", "run_async", "Summary", "Snapshot", "ProviderStats", "Printer", "format_summary",
           "BatchInputError", "ROW_FIELDS"]


def __getattr__(name: str) -> Any:
    if name in ("run", "run_async"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'hf_textgen.batch' has no attribute {name!r}")
