"""The batch benchmark's processes, one job each (``python batch_jobs.py MODE ...``), each printing
one JSON line on stdout:

- ``stub RATE``: the stand-in with the model on three providers, the first answering 429 to RATE of
  requests (no Retry-After, as most 429s); prints ``{"url", "provider_id"}``, serves until stdin closes.
- ``job CLIENT URL IN OUT CONCURRENCY RETRIES``: the whole batch by one client, in this fresh process:
  ``hf_textgen`` (``hf_textgen.batch.run``), or the usual way, ``asyncio.gather`` under a semaphore,
  over ``hub`` (huggingface_hub ``AsyncInferenceClient``, retrying 429 with backoff as a user writes
  it) or ``openai`` (``AsyncOpenAI``, its own retries), both pinned to the first provider of the
  mapping, as a user who picks one. Wall and CPU time of the job alone; peak RSS of the process.
- ``scan IN``: the input pass alone (ids and validation), its peak RSS.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import sys
import time
from typing import Any, Callable, Dict, List

MODEL = "bench/model"
PROVIDERS = ("together", "nebius", "sambanova")
TOKEN = "hf_bench_token"
BACKOFF = 1.0  # seconds before a first retry, doubling: the same as hf_textgen.batch's default


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stub(rate: float) -> None:
    from hf_textgen.testing import Provider, StubServer

    providers = [Provider(PROVIDERS[0], text="Done.", error_rate=rate)] + [Provider(name, text="Done.") for name in PROVIDERS[1:]]
    with StubServer({MODEL: providers}) as server:
        print(json.dumps({"url": server.url, "provider_id": server.provider(MODEL, PROVIDERS[0]).provider_id}), flush=True)
        for line in sys.stdin:
            if line.strip() == "clear":
                server.clear_requests()
                print(json.dumps({"cleared": True}), flush=True)


def ours(url: str, source: str, output: str, concurrency: int, retries: int) -> Dict[str, Any]:
    os.environ.update({"HF_ENDPOINT": url, "HF_TEXTGEN_ROUTER_URL": url, "HF_TOKEN": TOKEN})
    from hf_textgen import batch

    summary = batch.run(source, output, model=MODEL, concurrency=concurrency, retries=retries)
    providers = summary.providers
    return {"ok": summary.ok, "failed": summary.failed, "rate_limited": sum(p.rate_limited for p in providers.values()),
            "requests": summary.ok + summary.failed + sum(p.failed for p in providers.values()),
            "answered": {name: p.answered for name, p in providers.items()},
            "lowest_share": {name: p.lowest_share for name, p in providers.items()}}


class Usual:
    """The usual way: load the rows, one coroutine each, ``asyncio.gather`` under a semaphore."""

    def __init__(self, url: str, provider_id: str, output: str, concurrency: int, retries: int) -> None:
        self.base_url, self.provider_id = f"{url}/{PROVIDERS[0]}/v1", provider_id
        self.out = open(output, "w", encoding="utf-8")
        self.semaphore = asyncio.Semaphore(concurrency)
        self.retries = retries
        self.counts = {"ok": 0, "failed": 0, "rate_limited": 0, "requests": 0}

    def write(self, record: Dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    async def all(self, source: str, one: Callable[[Dict[str, Any]], Any]) -> None:
        with open(source, encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        await asyncio.gather(*(one(row) for row in rows))
        self.out.close()


async def hub(usual: Usual, source: str) -> None:
    from huggingface_hub import AsyncInferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    client = AsyncInferenceClient(base_url=usual.base_url, api_key=TOKEN, timeout=60)

    async def one(row: Dict[str, Any]) -> None:
        async with usual.semaphore:
            started = time.perf_counter()
            for attempt in range(usual.retries + 1):
                usual.counts["requests"] += 1
                try:
                    answer = await client.chat_completion([{"role": "user", "content": row["prompt"]}], model=usual.provider_id,
                                                          max_tokens=row.get("max_tokens"))
                except HfHubHTTPError as error:
                    status = error.response.status_code if error.response is not None else None
                    usual.counts["rate_limited"] += status == 429
                    if status != 429 or attempt == usual.retries:
                        usual.counts["failed"] += 1
                        usual.write({"id": row["id"], "error": str(error)[:200]})
                        return
                    await asyncio.sleep(BACKOFF * 2 ** attempt * random.uniform(0.5, 1.0))
                    continue
                usual.counts["ok"] += 1
                usual.write({"id": row["id"], "text": answer.choices[0].message.content, "elapsed_s": time.perf_counter() - started,
                             "usage": {"total_tokens": answer.usage.total_tokens} if answer.usage else None})
                return

    await usual.all(source, one)
    await client.close()


async def openai_job(usual: Usual, source: str) -> None:
    import openai

    async def seen(response: Any) -> None:
        usual.counts["requests"] += 1
        usual.counts["rate_limited"] += response.status_code == 429

    client = openai.AsyncOpenAI(base_url=usual.base_url, api_key=TOKEN, timeout=60, max_retries=usual.retries,
                                http_client=openai.DefaultAsyncHttpx2Client(event_hooks={"response": [seen]}))

    async def one(row: Dict[str, Any]) -> None:
        async with usual.semaphore:
            started = time.perf_counter()
            try:
                answer = await client.chat.completions.create(model=usual.provider_id, max_tokens=row.get("max_tokens"),
                                                              messages=[{"role": "user", "content": row["prompt"]}])
            except openai.APIError as error:
                usual.counts["failed"] += 1
                usual.write({"id": row["id"], "error": str(error)[:200]})
                return
            usual.counts["ok"] += 1
            usual.write({"id": row["id"], "text": answer.choices[0].message.content, "elapsed_s": time.perf_counter() - started,
                         "usage": {"total_tokens": answer.usage.total_tokens} if answer.usage else None})

    await usual.all(source, one)
    await client.close()


def job(client: str, url: str, source: str, output: str, concurrency: int, retries: int, provider_id: str) -> Dict[str, Any]:
    if client.startswith("hf_textgen"):
        import hf_textgen.batch.runner  # noqa: F401 - imported before the clock starts, as the peers are

        started, cpu = time.perf_counter(), cpu_s()
        counts = ours(url, source, output, concurrency, retries)
    else:
        runner = {"hub": hub, "openai": openai_job}[client]
        __import__({"hub": "huggingface_hub", "openai": "openai"}[client])
        usual = Usual(url, provider_id, output, concurrency, retries)
        started, cpu = time.perf_counter(), cpu_s()
        asyncio.run(runner(usual, source))  # type: ignore[operator]
        counts = usual.counts
    return {"wall_s": time.perf_counter() - started, "cpu_s": cpu_s() - cpu, "peak_rss_mb": rss_mb(), **counts}


def scan_only(source: str) -> Dict[str, Any]:
    from hf_textgen import Client
    from hf_textgen.batch.scan import scan

    client, before = Client(api_key=TOKEN), rss_mb()
    started, cpu = time.perf_counter(), cpu_s()
    plan = scan(source, client, MODEL, None, lambda row_id, line: False)
    return {"rows": plan.rows, "todo": plan.todo, "bad": plan.bad_count, "id_problems": plan.id_problem_count,
            "wall_s": time.perf_counter() - started, "cpu_s": cpu_s() - cpu, "rss_before_mb": before, "peak_rss_mb": rss_mb()}


def main(argv: List[str]) -> None:
    mode = argv[0]
    if mode == "stub":
        stub(float(argv[1]))
        return
    if mode == "job":
        client, url, source, output, concurrency, retries, provider_id = argv[1:8]
        result = job(client, url, source, output, int(concurrency), int(retries), provider_id)
    else:
        result = scan_only(argv[1])
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
