"""SSE decoding (pure): ``EventDecoder`` / ``PayloadDecoder`` / ``EventFramer`` against the WHATWG
event-stream rules, whatever the split of the byte stream into reads."""
from __future__ import annotations

import json
import logging
import re
import tracemalloc
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_textgen import sse
from hf_textgen.errors import ResponseError

Event = Tuple[str, str, Optional[str]]  # (type, data, id)
MiB = 1024 * 1024


DONE = "[DONE]"  # what ``payloads`` adds once the decoder has seen ``data: [DONE]``


def events(reads: Iterable[bytes], **kw: int) -> Iterator[object]:
    """The events of the reads, fed one read at a time, as the exchange does."""
    decoder = sse.EventDecoder(**kw)
    for data in reads:
        yield from decoder.feed(data)


def decode(reads: Iterable[bytes], **kw: int) -> List[Event]:
    return [(e.event, e.data, e.id) for e in events(reads, **kw)]  # type: ignore[attr-defined]


def stream_payloads(reads: Iterable[bytes], place: str) -> Iterator[object]:
    """The payloads of the reads; ``DONE`` at ``[DONE]``, after which nothing more is read."""
    decoder = sse.PayloadDecoder(place)
    for data in reads:
        found: List[object] = []
        try:
            decoder.feed(data, found.append)
        finally:
            yield from found
        if decoder.done:
            yield DONE
            return


def splits(stream: bytes) -> Iterator[List[bytes]]:
    """The stream whole, one byte per read, and cut in two at every position."""
    yield [stream]
    yield [stream[i : i + 1] for i in range(len(stream))]
    for cut in range(1, len(stream)):
        yield [stream[:cut], stream[cut:]]


def pieces(stream: bytes, size: int) -> List[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def reference(stream: bytes) -> List[Event]:
    """The WHATWG event-stream interpretation, written plainly. The id is the event's own ``id``
    field (sseclient reports that, not the persistent last-event-ID)."""
    text = stream.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)[:-1]  # the text after the last line end is no line
    found: List[Event] = []
    data: List[str] = []
    kind, event_id = "", None
    for line in lines:
        if line == "":
            if data:
                found.append((kind or "message", "\n".join(data), event_id))
            data, kind, event_id = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id":
            event_id = value
    return found  # a pending event at the end of the stream is discarded


def m(data: str, kind: str = "message", event_id: Optional[str] = None) -> Event:
    return (kind, data, event_id)


TABLE = [
    ("LF", b"data: a\n\ndata: b\n\n", [m("a"), m("b")]),
    ("CRLF", b"data: a\r\n\r\ndata: b\r\n\r\n", [m("a"), m("b")]),
    ("lone CR", b"data: a\r\rdata: b\r\r", [m("a"), m("b")]),
    ("mixed LF CRLF", b"data: a\n\r\ndata: b\n\r\n", [m("a"), m("b")]),
    ("mixed LF CR", b"data: a\n\rdata: b\n\r", [m("a"), m("b")]),
    ("CRLF is one line end", b"data: a\r\ndata: b\r\n\r\n", [m("a\nb")]),
    ("U+2028 and NEL do not end lines", "data: a\u2028b\x85c\n\n".encode(), [m("a\u2028b\x85c")]),
    ("multi-byte UTF-8", "data: é€😀\n\n".encode(), [m("é€😀")]),
    ("comments", b": keep-alive\n\ndata: a\n: inside\ndata: b\n\n:\n\n", [m("a\nb")]),
    ("data without the space", b"data:a\n\n", [m("a")]),
    ("only one space is removed", b"data:  a \n\n", [m(" a ")]),
    ("multi-line data", b"data: {\ndata: \"k\": 1\ndata: }\n\n", [m('{\n"k": 1\n}')]),
    ("event and id", b"event: error\nid: 7\ndata: x\n\ndata: y\n\n", [m("x", "error", "7"), m("y")]),
    ("empty event type is message", b"event:\ndata: x\n\n", [m("x")]),
    ("empty data is dispatched empty", b"data:\n\ndata\n\n", [m(""), m("")]),
    ("no data: nothing dispatched", b"event: ping\nid: 1\n\n\n\n\n", []),
    ("unknown fields ignored", b"retry: 10\nfoo: bar\ndata: x\n\n", [m("x")]),
    ("unterminated event at EOF discarded", b"data: a\n\ndata: b\n", [m("a")]),
    ("unterminated line at EOF discarded", b"data: a\n\ndata: b", [m("a")]),
    ("BOM stripped", b"\xef\xbb\xbfdata: a\n\n", [m("a")]),
    ("only one BOM stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [m("b")]),
    ("BOM only at the start", "data: a\n\n\ufeffdata: b\n\ndata: c\n\n".encode(), [m("a"), m("c")]),
    ("blank lines in a row", b"\n\n\ndata: a\n\n\n\ndata: b\r\n\r\n\r\n", [m("a"), m("b")]),
]


@pytest.mark.parametrize("stream, expected", [case[1:] for case in TABLE], ids=[case[0] for case in TABLE])
def test_decoding_table_any_split(stream: bytes, expected: List[Event]) -> None:
    assert reference(stream) == expected  # the table itself follows the WHATWG rules
    for reads in splits(stream):
        assert decode(reads) == expected, reads


def test_cr_at_the_end_of_one_read_and_lf_at_the_start_of_the_next() -> None:
    # Were the LF a line end of its own, it would be a blank line and split the event in two.
    assert decode([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [m("a\nb")]
    assert decode([b"data: a\r", b"", b"\n", b"\n"]) == [m("a")]  # also with an empty read between


def test_events_reach_the_caller_as_their_reads_complete() -> None:
    fed: List[bytes] = []

    def reads() -> Iterator[bytes]:
        for read in [b"data: 1\n", b"\ndata: 2\n\nda", b"ta: 3\n\n"]:
            fed.append(read)
            yield read

    found = events(reads())
    assert next(found).data == "1" and len(fed) == 2  # type: ignore[attr-defined]
    assert next(found).data == "2" and len(fed) == 2  # type: ignore[attr-defined]
    assert next(found).data == "3" and len(fed) == 3  # type: ignore[attr-defined]


def test_framer_returns_complete_events_only() -> None:
    framer = sse.EventFramer()
    assert framer.feed(b"\xef\xbb") == []
    assert framer.feed(b"\xbfdata: a\r") == []
    assert framer.feed(b"\n\r\ndata: b\n") == [b"data: a"]
    assert framer.feed(b"\n") == [b"data: b"]
    assert framer.feed(b"data: c") == []  # never completed: nothing


# --- errors and payloads -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [b"data: \xff\xfe\n\n", b"data: caf\xc3\n\n", b"event: \xc3(\ndata: x\n\n"])
def test_invalid_utf8_is_replaced_as_whatwg_says_and_logged_once(stream: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    decoder = sse.EventDecoder(place="provider 'p'")
    first, second = decoder.feed(stream), decoder.feed(stream + b'data: {"a": "caf\xc3\xa9"}\n\n')
    expected = stream.decode("utf-8", "replace")
    assert [(e.event, e.data) for e in first] == [(e.event, e.data) for e in second[:1]]  # type: ignore[attr-defined]
    assert "\ufffd" in "".join(e.event + e.data for e in first) and "\ufffd" in expected  # type: ignore[attr-defined]
    assert second[1].data == '{"a": "café"}'  # type: ignore[attr-defined]
    assert len(caplog.records) == 1 and "invalid UTF-8 in provider 'p'" in caplog.records[0].getMessage()


def payloads(*events: bytes) -> list:
    return list(stream_payloads(events, "provider 'p'"))


def test_an_error_after_payloads_in_the_same_read_comes_after_them() -> None:
    found: List[object] = []
    with pytest.raises(ResponseError, match="overloaded"):
        sse.PayloadDecoder("provider 'p'").feed(b'data: {"n": 1}\n\ndata: {"error": "overloaded"}\n\ndata: {"n": 2}\n\n', found.append)
    assert found == [{"n": 1}]


def test_payloads_are_json_and_done_ends_the_stream() -> None:
    def reads() -> Iterator[bytes]:
        yield b'data: {"a": 1}\n\ndata: [1, "x"]\n\n: ping\n\ndata:\n\n'
        yield b"data: [DONE]\n\n"
        raise AssertionError("read after [DONE]")

    assert list(stream_payloads(reads(), "p")) == [{"a": 1}, [1, "x"], DONE]


def test_multi_line_json_data() -> None:
    assert payloads(b'data: {"a":\ndata: 1}\n\n') == [{"a": 1}]


@pytest.mark.parametrize(
    "data", [b"{not json", b'{"a": 1} trailing', b"[DONE", b" ", b"\"unterminated", b"[" * 100_000]
)
def test_malformed_json_raises_never_skipped(data: bytes) -> None:
    with pytest.raises(ResponseError, match="malformed JSON in the stream .*provider 'p'"):
        payloads(b'data: {"ok": 1}\n\n', b"data: " + data + b"\n\n", b'data: {"ok": 2}\n\n')


@pytest.mark.parametrize(
    "event, message",
    [
        (b'data: {"error": {"message": "model overloaded", "code": 503}}\n\n', "model overloaded"),
        (b'data: {"error": "Input validation error"}\n\n', "Input validation error"),
        (b'data: {"object": "error", "message": "vLLM engine died", "type": "InternalServerError"}\n\n', "vLLM engine died"),
        (b'event: error\ndata: {"message": "upstream died"}\n\n', "upstream died"),
        (b"event: error\ndata: plain words\n\n", "plain words"),
    ],
)
def test_in_band_errors_raise_with_the_server_message(event: bytes, message: str) -> None:
    got: list = []
    with pytest.raises(ResponseError, match=f"provider 'p'.*{message}"):
        for payload in stream_payloads([b'data: {"n": 1}\n\n', event, b'data: {"n": 2}\n\n'], "provider 'p'"):
            got.append(payload)
    assert got == [{"n": 1}]


def test_error_null_is_not_an_error() -> None:
    assert payloads(b'data: {"error": null, "choices": []}\n\n') == [{"error": None, "choices": []}]


# --- the event size cap --------------------------------------------------------------------------


def test_event_cap_bounds_memory_and_stops_reading() -> None:
    piece = b"x" * (64 * 1024)
    consumed = 0

    def reads() -> Iterator[bytes]:
        nonlocal consumed
        yield b"data: "
        for _ in range(20 * MiB // len(piece)):
            consumed += 1
            yield piece

    tracemalloc.start()
    try:
        with pytest.raises(ResponseError, match=f"exceeded {8 * MiB} bytes.*max_event_bytes"):
            decode(reads(), max_event_bytes=8 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, peak
    assert consumed <= 8 * MiB // len(piece) + 2  # it stopped reading at the cap


@pytest.mark.parametrize("extra", [-1, 0, 1, 10])
@pytest.mark.parametrize("terminated", [True, False])
def test_event_cap_does_not_depend_on_the_split(extra: int, terminated: bool) -> None:
    cap = 1000
    event = b"data: " + b"x" * (cap - 6 + extra)  # the event is cap + extra bytes
    stream = b"data: a\n\n" + event + (b"\n\ndata: b\n\n" if terminated else b"\n")
    outcomes = set()
    for reads in [[stream], pieces(stream, 7), pieces(stream, 1), [stream[:20], stream[20:]]]:
        try:
            outcomes.add(len(decode(reads, max_event_bytes=cap)))
        except ResponseError as error:
            assert "exceeded 1000 bytes" in str(error)
            outcomes.add("too large")
    if terminated:
        expected = "too large" if extra > 0 else 3
    else:  # never ended, so discarded; refused once it is surely too large, whatever the split
        expected = "too large" if extra > 2 else 1
    assert outcomes == {expected}


def test_large_event_in_small_reads_is_joined_once() -> None:
    """Joining the event read after read (what sseclient-py does alone) copies all that came so far
    at each read: quadratic. The framer keeps the reads as they are and joins them once, when the
    event ends, so feeding the reads of an unfinished 4 MiB event allocates next to nothing."""
    stream = b"data: " + b"x" * (4 * MiB) + b"\n\n"
    small = pieces(stream, 4096)
    framer = sse.EventFramer()
    tracemalloc.start()
    try:
        for data in small[:-1]:
            assert framer.feed(data) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MiB // 4, f"{peak} bytes allocated while the event was unfinished"  # a copy per read: > 4 MiB
    assert framer.feed(small[-1]) == [stream[:-2]]


def test_event_of_many_long_lines_is_refused_not_parsed_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    # sseclient-py appends data lines one by one: 4 MiB in 100-byte lines took ~20 s to parse.
    parsed: List[int] = []
    parser = sse._EventParser

    class Counted(parser):  # type: ignore[misc, valid-type]
        def __init__(self, framed_events: List[bytes]) -> None:
            parsed.append(len(framed_events))
            super().__init__(framed_events)

    monkeypatch.setattr(sse, "_EventParser", Counted)
    many = b"data: " + b"x" * 93 + b"\n"
    stream = many * (4 * MiB // len(many)) + b"\n"
    for reads in (pieces(stream, 65536), [stream]):
        with pytest.raises(ResponseError, match="too costly to parse"):
            decode(reads)
    assert parsed == []  # refused before sseclient-py saw it
    # A few long lines and many short ones are fine.
    assert decode([many * 64 + b"\n", b"data: x\n" * 5000 + b"\n"])[1][1] == "\n".join(["x"] * 5000)
    assert parsed == [1, 1]


# --- any split of a valid stream -----------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=12)
LINE = st.one_of(
    st.builds(lambda t: "data: " + t, TEXT),
    st.builds(lambda t: "data:" + t, TEXT),
    st.just("data"),
    st.builds(lambda t: ":" + t, TEXT),  # a comment
    st.builds(lambda t: "event: " + t, TEXT),
    st.builds(lambda t: "id: " + t, TEXT),
    st.builds(lambda t: "retry: " + t, TEXT),
    TEXT,  # an unknown field, or a blank line
)
LINE_END = st.sampled_from(["\n", "\r", "\r\n"])
EVENT = st.lists(st.tuples(LINE, LINE_END), max_size=5).map(lambda lines: "".join(a + b for a, b in lines))


@st.composite
def streams(draw: st.DrawFn) -> Tuple[bytes, List[bytes]]:
    events = draw(st.lists(st.tuples(EVENT, LINE_END), max_size=6))
    text = "".join(event + end for event, end in events)
    if draw(st.booleans()):
        text += draw(EVENT)  # possibly an unterminated last event
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    reads = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    return data, reads


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(streams())
def test_any_split_yields_the_events_of_the_whole_stream(case: Tuple[bytes, List[bytes]]) -> None:
    stream, reads = case
    whole = decode([stream])
    assert whole == reference(stream)
    assert decode(reads) == whole


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"data: x", b":c", b"\xef\xbb\xbf", b"event: e"]), max_size=30), st.data())
def test_any_split_of_line_end_soup(parts: Sequence[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reads = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert decode(reads) == decode([stream]) == reference(stream)


def test_payload_json_round_trip_any_split() -> None:
    chunks = [{"choices": [{"delta": {"content": text}}]} for text in [" lead", "trail ", "\n", "é€😀", "\u2028"]]
    stream = b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\r\n\r\n" for c in chunks) + b"data: [DONE]\r\n\r\n"
    for reads in [[stream], pieces(stream, 1), pieces(stream, 5)]:
        assert list(stream_payloads(reads, "p")) == [*chunks, DONE]
