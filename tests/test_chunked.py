"""The chunked transfer-coding decoder: any split of a valid body gives the same data; framing
errors raise ValueError (the transport turns them into "the stream was cut")."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_textgen.chunked import ChunkedDecoder


def encode(pieces, trailer=b"", extension=b""):
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces if p)
    return body + b"0\r\n" + trailer + b"\r\n"


def decode(body, size):
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(body[i : i + size]) for i in range(0, len(body), size))
    return out, decoder.done


@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    size=st.integers(min_value=1, max_value=600),
    trailer=st.sampled_from([b"", b"X-Trailer: 1\r\n", b"A: b\r\nC: d\r\n"]),
    extension=st.sampled_from([b"", b";name=value", b" ; x"]),
)
def test_any_split_decodes_to_the_same_data(pieces, size, trailer, extension):
    assert decode(encode(pieces, trailer, extension), size) == (b"".join(pieces), True)


def test_data_of_an_unfinished_chunk_is_returned_as_it_arrives():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"10\r\nhello") == b"hello"
    assert decoder.feed(b" world") == b" world"
    assert not decoder.done


def test_many_chunks_in_one_read_come_back_in_one_piece():
    assert ChunkedDecoder().feed(b"1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n") == b"abcdef"


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n", b"-5\r\nhello\r\n", b"0x5\r\nhello\r\n", b"5\r\nhelloXX", b"1\r\na\r\n0\r\n\r\nextra", b"f" * 5000],
)
def test_framing_errors_raise(body):
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(body)


def test_incomplete_body_is_not_done():
    decoder = ChunkedDecoder()
    decoder.feed(b"5\r\nhel")
    assert not decoder.done
