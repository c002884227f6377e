"""hf_textgen.batch.run / run_async against the stand-in over loopback: rows, resume, bad rows and
ids, strict, load spread over providers, retries, shards, cancellation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import anyio
import pytest

from hf_textgen import Client, batch, clear_caches
from hf_textgen.batch import BatchInputError, Snapshot, Summary
from hf_textgen.errors import ConfigurationError, MissingAuthError
from hf_textgen.testing import Provider, StubServer

from batch_support import MODEL, THREE, ids_of, posts, prompts, read_output, stub, stub_env, three_providers, write_rows

__all__ = ["stub"]  # the fixture


def run(tmp_path: Path, rows: List[Any], **options: Any) -> Summary:
    source = write_rows(tmp_path / "in.jsonl", rows)
    options.setdefault("model", MODEL)
    return batch.run(str(source), str(tmp_path / "out.jsonl"), **options)


def test_every_row_is_answered_once_with_its_fields(tmp_path: Path, stub: StubServer) -> None:
    snapshots: List[Snapshot] = []
    summary = run(tmp_path, prompts(30, max_tokens=16), concurrency=4, progress=snapshots.append)
    records = read_output(tmp_path / "out.jsonl")
    assert sorted(ids_of(records)) == sorted(f"row-{n}" for n in range(30))
    record = records[0]
    assert list(record) == ["id", "model", "provider", "text", "finish_reason", "usage", "attempts", "retries", "elapsed_s"]
    assert record["text"] == f"Hello from {record['provider']}!" and record["finish_reason"] == "stop"
    assert record["usage"]["completion_tokens"] > 0 and record["model"] == MODEL
    assert {r["provider"] for r in records} == set(THREE)  # spread, not all on the first
    assert (summary.ok, summary.failed, summary.skipped, summary.not_run, summary.stopped) == (30, 0, 0, 0, None)
    assert sum(p.answered for p in summary.providers.values()) == 30
    assert posts(stub) == 30 and all(r.body["max_tokens"] == 16 for r in stub.requests if r.method == "POST")
    assert snapshots[-1].final and snapshots[-1].done == 30 and snapshots[-1].todo == 30


def test_a_rerun_skips_what_is_done_and_sends_nothing(tmp_path: Path, stub: StubServer) -> None:
    run(tmp_path, prompts(10))
    stub.clear_requests()
    summary = run(tmp_path, prompts(12))  # two rows more
    assert posts(stub) == 2 and (summary.ok, summary.skipped) == (2, 10)
    assert sorted(ids_of(read_output(tmp_path / "out.jsonl"))) == sorted(f"row-{n}" for n in range(12))


def test_tool_calls_reasoning_and_per_row_parameters(tmp_path: Path, stub: StubServer) -> None:
    stub.set_model("org/Tools", [Provider("together", text="", reasoning="Think.",
                                          tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])])
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    run(tmp_path, [{"id": 1, "messages": [{"role": "user", "content": "Weather?"}], "model": "org/Tools", "tools": tools,
                    "temperature": 0.2, "response_format": {"type": "json_object"}}])
    (record,) = read_output(tmp_path / "out.jsonl")
    assert record["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert record["reasoning"] == "Think." and record["finish_reason"] == "tool_calls" and record["model"] == "org/Tools"
    (sent,) = [r.body for r in stub.requests if r.method == "POST"]
    assert sent["tools"] == tools and sent["temperature"] == 0.2 and sent["response_format"] == {"type": "json_object"}


def test_bad_rows_become_error_rows_naming_their_line(tmp_path: Path, stub: StubServer) -> None:
    rows: List[Any] = [*prompts(2), "{not json", {"id": "t", "prompt": "x", "temprature": 1},
                       {"id": "v", "prompt": "x", "temperature": 9}, {"id": "m", "messages": [{"role": "robot", "content": "x"}]}]
    summary = run(tmp_path, rows)
    errors = {r["line"]: r for r in read_output(tmp_path / "out.jsonl") if "error" in r}
    assert sorted(errors) == [3, 4, 5, 6] and errors[3]["id"] is None and errors[4]["id"] == "t"
    assert errors[3]["error"]["message"].startswith("line 3: not JSON")
    assert "unknown field(s) 'temprature'" in errors[4]["error"]["message"]
    assert errors[5]["error"]["message"] == "line 5: temperature must be a number from 0 to 2, not int 9"
    assert "messages[0]['role']" in errors[6]["error"]["message"]
    assert all(e["error"]["type"] == "ConfigurationError" for e in errors.values())
    assert (summary.ok, summary.failed, summary.bad) == (2, 4, 4) and posts(stub) == 2


def test_strict_refuses_before_sending_anything(tmp_path: Path, stub: StubServer) -> None:
    with pytest.raises(BatchInputError, match=r"2 bad row\(s\) \(strict\), nothing was sent: line 2: not JSON") as refused:
        run(tmp_path, [*prompts(1), "oops", {"id": "x", "prompt": "x", "top_p": 7}], strict=True)
    assert refused.value.count == 2 and refused.value.problems[1].startswith("line 3: top_p must be")
    assert stub.requests == [] and not (tmp_path / "out.jsonl").exists()


def test_missing_and_repeated_ids_are_reported_before_anything_is_sent(tmp_path: Path, stub: StubServer) -> None:
    rows = [*prompts(3), {"prompt": "no id"}, {"id": "row-1", "prompt": "again"}, {"id": 2.5, "prompt": "x"}, *prompts(1)]
    with pytest.raises(BatchInputError) as refused:
        run(tmp_path, rows)
    message = str(refused.value)
    assert "4 row(s) without a usable or unique id, nothing was sent" in message
    assert 'line 4: no "id"' in message and "line 6: \"id\" must be a non-empty string or an integer" in message
    assert "id 'row-1' is on lines 2, 5" in message and "id 'row-0' is on lines 1, 7" in message
    assert stub.requests == []  # not even the Hub


def test_long_files_list_twenty_problems_and_count_the_rest(tmp_path: Path, stub: StubServer) -> None:
    with pytest.raises(BatchInputError, match=r"25 row\(s\) without .*; \.\.\. and 5 more\.") as refused:
        run(tmp_path, [{"prompt": "x"}] * 25)
    assert len(refused.value.problems) == 20


def test_a_provider_answering_429_to_most_requests_gets_less_and_less(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(three_providers(error_rate=0.9)) as stub:
        stub_env(stub, monkeypatch)
        summary = run(tmp_path, prompts(300), concurrency=8)
    records = read_output(tmp_path / "out.jsonl")
    assert len(records) == 300 and all("error" not in r for r in records)
    on_others = sum(r["provider"] != "together" for r in records)
    assert on_others >= 270  # most rows end on the providers that answer
    bad = summary.providers["together"]
    assert bad.rate_limited > 0 and bad.rate_limited == bad.failed
    assert bad.lowest_share is not None and bad.lowest_share <= 2  # 8, halved at least twice
    assert posts(stub, "together") < 300 * 0.25  # without shares every row would try it first
    assert summary.providers["nebius"].share == summary.providers["sambanova"].share == 8
    assert any(a["provider"] == "together" and a["status"] == 429 for r in records for a in r["attempts"])


def test_retry_after_keeps_a_provider_out_for_that_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(three_providers(error_rate=1.0, retry_after=120)) as stub:
        stub_env(stub, monkeypatch)
        summary = run(tmp_path, prompts(100), concurrency=6)
    assert summary.ok == 100 and posts(stub, "together") <= 6  # the first requests only, before its answer came
    assert summary.providers["together"].answered == 0


def test_a_row_that_fails_everywhere_is_retried_then_written_as_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = {MODEL: [Provider(name, error_status=429, retry_after=0) for name in THREE[:2]]}
    with StubServer(failing) as stub:
        stub_env(stub, monkeypatch)
        summary = run(tmp_path, prompts(2), retries=2, retry_backoff=0)
        assert posts(stub) == 2 * 3 * 2  # rows x rounds x providers
    records = read_output(tmp_path / "out.jsonl")
    assert [r["retries"] for r in records] == [2, 2] and all(len(r["attempts"]) == 6 for r in records)
    assert records[0]["error"]["type"] == "RateLimitError" and records[0]["error"]["status"] == 429
    assert "every provider failed" in records[0]["error"]["message"]
    assert (summary.failed, summary.retried) == (2, 2)


def test_a_row_is_retried_once_it_succeeds_on_a_later_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky = {MODEL: [Provider("together", error_rate=0.5, retry_after=0)]}  # answers, refuses, answers, ...
    with StubServer(flaky) as stub:
        stub_env(stub, monkeypatch)
        run(tmp_path, prompts(2), concurrency=1, retry_backoff=0)
    first, second = read_output(tmp_path / "out.jsonl")
    assert (first["retries"], first["attempts"]) == (0, [])
    assert second["retries"] == 1 and second["attempts"] == [{"provider": "together", "status": 429, "reason": "Rate limit reached. Please retry later."}]


def test_errors_that_a_retry_cannot_cure_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer({MODEL: [Provider("together", error_status=402), Provider("nebius", error_status=404)]}) as stub:
        stub_env(stub, monkeypatch)
        run(tmp_path, prompts(1), retries=3, retry_backoff=0)
        assert posts(stub) == 2
    (record,) = read_output(tmp_path / "out.jsonl")
    assert record["retries"] == 0 and record["error"]["status"] == 404


def test_a_refused_token_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(three_providers(), token="hf_the_right_one") as stub:
        stub_env(stub, monkeypatch)
        with pytest.raises(MissingAuthError):
            run(tmp_path, prompts(50), concurrency=2)
        assert posts(stub) <= 3
    assert not (tmp_path / "out.jsonl").exists()  # no row written: no new file left behind


def test_no_token_at_all_is_refused_before_anything_is_sent(tmp_path: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(MissingAuthError, match="no Hugging Face token"):
        run(tmp_path, prompts(3))
    assert stub.requests == []


def test_two_shards_together_hold_every_row_once(tmp_path: Path, stub: StubServer) -> None:
    source = write_rows(tmp_path / "in.jsonl", [*prompts(5), "", *prompts(6, start=5)])
    outputs = [tmp_path / f"out{k}.jsonl" for k in range(2)]
    for k, output in enumerate(outputs):
        summary = batch.run(str(source), str(output), model=MODEL, shard=(k, 2))
        assert summary.rows == 11 and summary.shard_rows == (6 if k == 0 else 5)
    first = ids_of(read_output(outputs[0]))
    assert sorted(first) == sorted(f"row-{n}" for n in range(0, 11, 2))  # the blank line is not a position
    assert sorted(first + ids_of(read_output(outputs[1]))) == sorted(f"row-{n}" for n in range(11))


def test_settings_are_checked_in_plain_words(tmp_path: Path, stub: StubServer) -> None:
    source = str(write_rows(tmp_path / "in.jsonl", prompts(1)))
    out = str(tmp_path / "out.jsonl")
    for options, message in [({"concurrency": 0}, "concurrency must be a whole number >= 1"),
                             ({"retries": -1}, "retries must be a whole number >= 0"),
                             ({"shard": (2, 2)}, "shard must be"), ({"retry_backoff": -1}, "retry_backoff must be"),
                             ({"progress": 3}, "progress must be a callable")]:
        with pytest.raises(ConfigurationError, match=message):
            batch.run(source, out, **options)
    with pytest.raises(ConfigurationError, match="cannot read the input file .*nope.jsonl"):
        batch.run(str(tmp_path / "nope.jsonl"), out)
    with pytest.raises(ConfigurationError, match="must not be the input file"):
        batch.run(source, source)
    assert stub.requests == []


# ------------------------------------------------------------------------------------------- async
@pytest.mark.anyio
async def test_run_async_on_asyncio_and_trio(tmp_path: Path, stub: StubServer) -> None:
    source = write_rows(tmp_path / "in.jsonl", prompts(20))
    client = Client(provider=["sambanova", "nebius"])  # the candidates, in this order
    summary = await batch.run_async(str(source), str(tmp_path / "out.jsonl"), model=MODEL, client=client, concurrency=3)
    records = read_output(tmp_path / "out.jsonl")
    assert summary.ok == 20 and len(records) == 20 and {r["provider"] for r in records} == {"sambanova", "nebius"}


@pytest.mark.anyio
async def test_the_sync_run_refuses_inside_an_event_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"inside a running event loop .*await hf_textgen.batch.run_async"):
        batch.run(str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"))


@pytest.mark.anyio
async def test_cancelling_run_async_closes_the_streams_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = {MODEL: [Provider("together", chunks=[f"w{n} " for n in range(400)], delay=0.02)]}
    with StubServer(slow) as stub:
        stub_env(stub, monkeypatch)
        source = write_rows(tmp_path / "in.jsonl", prompts(10))
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(lambda: batch.run_async(str(source), str(tmp_path / "out.jsonl"), model=MODEL, concurrency=4))
                while stub.streams_open < 4:
                    await anyio.sleep(0.01)
                tasks.cancel_scope.cancel()
            while stub.streams_open:  # the server sees each connection close (this process lives on)
                await anyio.sleep(0.01)
        assert stub.streams_abandoned == 4 and posts(stub) == 4
    assert read_output(tmp_path / "out.jsonl") == []
    clear_caches()


def test_import_hf_textgen_does_not_import_the_batch_package() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import hf_textgen"], capture_output=True, text=True, timeout=60)
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "hf_textgen" in imported and not [name for name in imported if name.startswith("hf_textgen.batch")]
    probe = ("import sys, hf_textgen.batch.command; print(json.dumps(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('anyio', 'trio') or m.startswith('hf_textgen.batch'))))")
    done = subprocess.run([sys.executable, "-c", "import json; " + probe], capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == ["hf_textgen.batch", "hf_textgen.batch.command"]  # no anyio, no runner
