"""hf_textgen.batch.rows and .shares: input lines to rows, shards, and the AIMD shares. Pure, no server."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hf_textgen.batch.rows import BadRow, IdProblem, Line, Row, check_shard, in_shard, parse, read_lines
from hf_textgen.batch.shares import MAX_BACKOFF, MAX_PAUSE, Shares


def line(value: Any, number: int = 7) -> Line:
    raw = value if isinstance(value, bytes) else (value if isinstance(value, str) else json.dumps(value)).encode()
    return Line(number, number - 1, raw + b"\n")


def test_a_prompt_row_and_a_messages_row() -> None:
    row = parse(line({"id": "a", "prompt": "Hi", "max_tokens": 9, "model": "org/M"}))
    assert row == Row(7, "a", [{"role": "user", "content": "Hi"}], "org/M", {"max_tokens": 9})
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
    row = parse(line({"id": 3, "messages": messages, "timeout": [5, 60], "provider": ["together"]}))
    assert row == Row(7, 3, messages, None, {"timeout": (5, 60), "provider": ["together"]})


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "line 7: not JSON (Expecting value"),
    (b"\xff\xfe{}", "line 7: not UTF-8 text (byte 1)"),
    ([1, 2], "line 7: a row must be a JSON object, not list"),
    ({"id": "a"}, 'line 7: give either "messages"'),
    ({"id": "a", "prompt": "x", "messages": []}, ", not both"),
    ({"id": "a", "prompt": ""}, '"prompt" must be a non-empty string'),
    ({"id": "a", "prompt": "x", "temprature": 1}, "unknown field(s) 'temprature'"),
    ({"id": "a", "prompt": "x", "api_key": "hf_secret123456"}, "api_key does not belong in an input file"),
])
def test_bad_rows_say_why_with_their_line(raw: Any, reason: str) -> None:
    bad = parse(line(raw))
    assert isinstance(bad, BadRow) and bad.line == 7
    assert reason in bad.message
    assert "hf_secret" not in bad.message


@pytest.mark.parametrize("value", [{"prompt": "x"}, {"id": None, "prompt": "x"}, {"id": "", "prompt": "x"},
                                   {"id": 1.5, "prompt": "x"}, {"id": True, "prompt": "x"}, {"id": [1], "prompt": "x"}])
def test_rows_without_a_usable_id_are_id_problems(value: Any) -> None:
    problem = parse(line(value))
    assert isinstance(problem, IdProblem) and problem.line == 7 and '"id"' in problem.reason


def test_read_lines_streams_non_empty_lines_with_numbers_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n   \n{"b": 2}\r\n{"c": 3}')
    lines = list(read_lines(str(path)))
    assert [(l.number, l.position) for l in lines] == [(1, 0), (4, 1), (5, 2)]
    assert lines[0].raw == b'{"a": 1}\n' and lines[2].raw == b'{"c": 3}'


def test_shards_split_positions_modulo_n() -> None:
    assert check_shard(None) is None and check_shard((1, 3)) == (1, 3) and check_shard([0, 1]) == (0, 1)
    for bad in [(3, 3), (-1, 2), (0, 0), (1,), "0/2", (0.0, 2), (True, 2)]:
        with pytest.raises(ValueError, match="shard must be"):
            check_shard(bad)
    taken = [[p for p in range(10) if in_shard(Line(p + 1, p, b"x"), (k, 3))] for k in range(3)]
    assert taken == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


# ------------------------------------------------------------------------------------------- shares
def test_load_spreads_in_proportion_to_shares_in_the_users_order() -> None:
    shares = Shares(["a", "b", "c"], ceiling=6)
    firsts = [shares.pick(0.0)[0] for _ in range(6)]  # type: ignore[index]
    assert firsts == ["a", "b", "c", "a", "b", "c"]
    assert shares.pick(0.0, among=["c", "a"]) == ["c", "a"]  # ties: the order given (a row's own list)


def test_a_failure_halves_once_per_round_trip_and_successes_grow_it_back() -> None:
    shares = Shares(["a", "b"], ceiling=16)
    shares.failed("a", sent_at=1.0, now=2.0)
    assert shares.by_name["a"].limit == 8
    shares.failed("a", sent_at=1.5, now=2.1)  # sent before the cut: the same congestion
    assert shares.by_name["a"].limit == 8
    shares.failed("a", sent_at=2.05, now=3.0)
    assert shares.by_name["a"].limit == 4
    for _ in range(4):
        shares.succeeded("a")
    assert 4.8 < shares.by_name["a"].limit < 5  # + 1/share each
    for _ in range(500):
        shares.succeeded("a")
    assert shares.by_name["a"].limit == 16 and shares.limits()["a"] == (16, 4)
    for step in range(10):
        shares.failed("b", sent_at=10.0 + step, now=10.0 + step)
    assert shares.by_name["b"].limit == 1  # the floor: still probed


def test_retry_after_pauses_a_provider_and_sends_it_last() -> None:
    shares = Shares(["a", "b", "c"], ceiling=4)
    shares.failed("a", sent_at=0.0, now=0.0, retry_after=30)
    assert shares.pick(1.0) == ["b", "c", "a"]
    assert shares.pick(1.0, among=["a"]) is None and shares.wait_hint(1.0, among=["a"]) == 29
    assert shares.pick(30.0, among=["a"]) == ["a"]
    shares.failed("b", sent_at=0.0, now=0.0, retry_after=10_000)
    assert shares.by_name["b"].ready_at == MAX_PAUSE


def test_failures_in_a_row_without_retry_after_back_off() -> None:
    shares = Shares(["a"], ceiling=4)
    pauses = []
    for step in range(12):
        shares.failed("a", sent_at=100.0 * step, now=100.0 * step)
        pauses.append(shares.by_name["a"].ready_at - 100.0 * step)
    assert pauses[:5] == [0.0, 0.5, 1.0, 2.0, 4.0] and pauses[-1] == MAX_BACKOFF
    shares.succeeded("a")
    shares.failed("a", sent_at=5000.0, now=5000.0)
    assert shares.by_name["a"].ready_at == 5000.0  # the streak ended


def test_room_is_the_share_and_in_flight_moves_with_failover() -> None:
    shares = Shares(["a", "b"], ceiling=2)
    shares.failed("a", sent_at=0.0, now=0.0)  # a: 1
    # a (share 1) and b (share 2) fill in proportion: b, then the tie a, then b's second slot
    assert [shares.pick(1.0) for _ in range(4)] == [["b", "a"], ["a", "b"], ["b", "a"], None]
    assert shares.wait_hint(1.0) is None  # nothing paused: wait for a release
    shares.end("a")
    shares.begin("b")  # a request failed over from a to b: b is over its share for now
    assert shares.pick(1.0) == ["a", "b"]
    assert not shares.knows(["x"]) and shares.pick(1.0, among=["x"]) is None
