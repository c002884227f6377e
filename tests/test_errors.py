"""Errors: the tree, redaction and server messages (pure), then what each HTTP answer becomes at the
request level (``responses``), and that no error or log line ever shows the token."""
from __future__ import annotations

import email.utils
import logging
import socket
import time
import traceback
from typing import Any, Dict, List, Optional

import pytest
import requests
import responses

from hf_textgen import HuggingFaceAPI, errors
from hf_textgen.errors import (
    ConfigurationError,
    ConnectError,
    HFTextGenError,
    MissingAuthError,
    ModelNotSupportedError,
    PaymentRequiredError,
    RateLimitError,
    ResponseError,
    ResponseStatusError,
    StreamTimeoutError,
    error_text,
    exhausted,
    redact,
    shorten,
)

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)
from mocked import MAPPING_URL, MESSAGES, MODEL, TOKEN, chat_url, mapping_of, serve_mapping

URL = chat_url("together")
WHERE = f"provider 'together', model '{MODEL}', {URL}"

# -- the tree -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, bases",
    [
        (ConfigurationError, (HFTextGenError, ValueError)),
        (ModelNotSupportedError, (HFTextGenError,)),
        (ResponseError, (HFTextGenError,)),
        (ConnectError, (ResponseError,)),
        (StreamTimeoutError, (ResponseError, TimeoutError)),
        (ResponseStatusError, (HFTextGenError,)),
        (MissingAuthError, (ResponseStatusError,)),
        (PaymentRequiredError, (ResponseStatusError,)),
        (RateLimitError, (ResponseStatusError,)),
    ],
)
def test_the_exception_tree(error: type, bases: tuple) -> None:
    assert issubclass(error, bases) and issubclass(error, Exception)


def test_status_errors_carry_their_status_and_provider() -> None:
    error = RateLimitError("slow down", status_code=429, provider="together", server_message=f"for {TOKEN}", retry_after=3.0)
    assert (error.status_code, error.provider, error.retry_after, error.message) == (429, "together", 3.0, "slow down")
    assert TOKEN not in error.server_message


# -- redaction and server messages (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"token {TOKEN} refused",
        f"Authorization: Bearer {TOKEN}",
        "authorization: bearer abc.def-ghi_jkl",
        "key sk-proj-abcdef123456 refused",
        "GET /x?api_key=abcd1234efgh&x=1",
        "GET /x?access_token=abcd1234efgh",
        "GET /x?token=abcd1234efgh",
    ],
)
def test_token_looking_values_are_redacted(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_known_secrets", set())
    redacted = redact(text)
    assert "***" in redacted
    assert not any(secret in redacted for secret in (TOKEN, "abc.def-ghi_jkl", "sk-proj-abcdef123456", "abcd1234efgh"))


def test_remembered_secrets_are_redacted_whatever_they_look_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_known_secrets", set())
    errors.remember_secret("plain-looking-secret")
    errors.remember_secret("ab")  # too short to redact safely: ignored
    errors.remember_secret(None)
    assert redact("the plain-looking-secret is ab") == "the *** is ab"
    assert str(HFTextGenError("x plain-looking-secret y")) == "x *** y"


def test_ordinary_text_is_left_alone() -> None:
    text = "HTTP 402 from provider 'together', model 'org/model', https://router.huggingface.co/together/v1/chat/completions"
    assert redact(text) == text


def test_shorten_collapses_white_space_and_cuts() -> None:
    assert shorten("  a \n\t b  ") == "a b"
    cut = shorten("x" * 1000)
    assert len(cut) == errors.MAX_SERVER_MESSAGE and cut.endswith("…")
    assert shorten("abcdef", 4) == "abc…"


@pytest.mark.parametrize(
    "payload, text",
    [
        ({"error": "plain text"}, "plain text"),
        ({"error": {"message": "nested", "type": "invalid_request_error"}}, "nested"),
        ({"message": "top-level"}, "top-level"),
        ({"detail": "fastapi style"}, "fastapi style"),
        ({"error_message": "hf style"}, "hf style"),
        ([{"error": "first of a list"}], "first of a list"),
        ({"error": ["Input validation error", "second"]}, "Input validation error"),
        ({"error": {"code": 5}}, '{"code": 5}'),
        ("just a string", "just a string"),
    ],
)
def test_error_text_finds_the_message_in_known_shapes(payload: Any, text: str) -> None:
    assert error_text(payload) == text


def test_exhausted_keeps_the_last_errors_class_and_lists_every_attempt() -> None:
    first = RateLimitError("HTTP 429 from a", status_code=429, provider="a", retry_after=2.0)
    last = PaymentRequiredError("HTTP 402 from b", status_code=402, provider="b")
    error = exhausted(MODEL, [("a", first), ("b", last)])
    assert type(error) is PaymentRequiredError and error is not last
    assert (error.status_code, error.provider) == (402, "b")
    assert str(error) == f"every provider failed for model '{MODEL}' (2 tried): a: HTTP 429 from a; b: HTTP 402 from b"
    assert getattr(error, "attempts") == [("a", first), ("b", last)]
    assert str(last) == "HTTP 402 from b"  # the original is unchanged


# -- HTTP answers at the request level ------------------------------------------------------------------


@pytest.fixture
def routed(mock: responses.RequestsMock) -> responses.RequestsMock:
    """The Hub maps MODEL to together only; each test scripts together's answer."""
    serve_mapping(mock, mapping_of("together"))
    return mock


def failure_of(**kw: Any) -> HFTextGenError:
    kw.setdefault("api_key", TOKEN)
    with pytest.raises(HFTextGenError) as raised:
        list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, stream=False, **kw))
    return raised.value


@pytest.mark.parametrize(
    "status, error_type",
    [(400, ResponseStatusError), (401, MissingAuthError), (402, PaymentRequiredError), (403, ResponseStatusError), (404, ResponseStatusError), (408, ResponseStatusError), (422, ResponseStatusError), (429, RateLimitError), (500, ResponseStatusError), (503, ResponseStatusError)],
)
def test_each_status_becomes_its_error_naming_model_provider_url_status_and_message(routed: responses.RequestsMock, status: int, error_type: type) -> None:
    routed.post(URL, status=status, json={"error": f"the server explains {status}"})
    error = failure_of()
    assert type(error) is error_type and getattr(error, "status_code") == status
    assert getattr(error, "provider") == "together" and getattr(error, "server_message") == f"the server explains {status}"
    assert f"HTTP {status} from {WHERE}: the server explains {status}" in str(error)


SERVER_MESSAGES: Dict[str, Any] = {
    "error text": ({"json": {"error": "quota exceeded"}}, "quota exceeded"),
    "error object": ({"json": {"error": {"message": "credits exhausted", "type": "billing"}}}, "credits exhausted"),
    "header": ({"json": {"error": "body text"}, "headers": {"X-Error-Message": "from the header"}}, "from the header"),
    "html page": ({"body": "<!DOCTYPE html><html><head><title>502 Bad &amp; Gateway</title></head><body>" + "x" * 5000 + "</body></html>", "content_type": "text/html"}, "an HTML page (text/html): 502 Bad & Gateway"),
    "html without title": ({"body": "<html><body>down</body></html>", "content_type": "text/html; charset=utf-8"}, "an HTML page (text/html; charset=utf-8)"),
    "plain text": ({"body": "upstream   connect\nerror", "content_type": "text/plain"}, "upstream connect error"),
    "long": ({"json": {"error": "word " * 500}}, ("word " * 60).strip() + "…"),
    "nothing": ({"body": b""}, "Payment Required"),
}


HTML_502 = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"

# What providers and proxies answer (case: status, the answer, the error class, the message found).
PROVIDER_SHAPES: Dict[str, Any] = {
    "openai": (400, {"json": {"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "code": "bad_max_tokens"}}}, ResponseStatusError, "max_tokens is too large"),
    "tgi": (422, {"json": {"error": "Input validation error: `inputs` must have less than 4096 tokens", "error_type": "validation"}}, ResponseStatusError, "Input validation error: `inputs` must have less than 4096 tokens"),
    "vllm": (400, {"json": {"object": "error", "message": "This model's maximum context length is 4096 tokens", "type": "BadRequestError", "param": None, "code": 400}}, ResponseStatusError, "This model's maximum context length is 4096 tokens"),
    "hf-loading": (503, {"json": {"error": "Model org/model is currently loading", "estimated_time": 20.0}}, ResponseStatusError, "Model org/model is currently loading"),
    "hf-header": (500, {"body": b"", "content_type": "text/plain", "headers": {"X-Error-Message": "Inference backend crashed"}}, ResponseStatusError, "Inference backend crashed"),
    "nginx-502": (502, {"body": HTML_502, "content_type": "text/html; charset=utf-8"}, ResponseStatusError, "an HTML page (text/html; charset=utf-8): 502 Bad Gateway"),
    "hf-401": (401, {"json": {"error": "Invalid credentials in Authorization header"}}, MissingAuthError, "Invalid credentials in Authorization header"),
    "hf-402": (402, {"json": {"error": "You have exceeded your monthly included credits"}}, PaymentRequiredError, "You have exceeded your monthly included credits"),
}


@pytest.mark.parametrize("case", list(PROVIDER_SHAPES))
def test_each_providers_error_shape_gives_its_message(routed: responses.RequestsMock, case: str) -> None:
    status, answer, error_type, expected = PROVIDER_SHAPES[case]
    routed.post(URL, status=status, **answer)
    error = failure_of()
    assert type(error) is error_type and getattr(error, "status_code") == status
    assert f"HTTP {status} from {WHERE}: {expected}" in str(error)


@pytest.mark.parametrize("case", list(SERVER_MESSAGES))
def test_the_servers_message_is_found_and_shortened(routed: responses.RequestsMock, case: str) -> None:
    answer, expected = SERVER_MESSAGES[case]
    routed.post(URL, status=402, **answer)
    error = failure_of()
    assert isinstance(error, PaymentRequiredError)
    assert f"HTTP 402 from {WHERE}: {expected}" in str(error)
    assert len(getattr(error, "server_message")) <= errors.MAX_SERVER_MESSAGE


def test_a_connection_failure_names_where_it_happened(routed: responses.RequestsMock) -> None:
    routed.post(URL, body=requests.ConnectionError("Connection refused"))
    error = failure_of()
    assert type(error) is ConnectError and f"connection to router.huggingface.co:443 failed: Connection refused ({WHERE})" in str(error)


def test_a_refused_connection_says_so_and_what_to_check() -> None:
    with socket.socket() as closed:  # bound, never listening: connecting is refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(ConnectError) as raised:
            list(HuggingFaceAPI.create_completion("m", [{"role": "user", "content": "x"}], api_base=f"http://127.0.0.1:{port}/v1"))
    assert str(raised.value).startswith(f"connection refused by 127.0.0.1:{port} (")
    assert "check that the server is running" in str(raised.value) and "HTTPPool" not in str(raised.value)
    assert raised.value.reason == f"connection refused by 127.0.0.1:{port}"


def test_a_timeout_is_a_stream_timeout(routed: responses.RequestsMock) -> None:
    routed.post(URL, body=requests.ConnectTimeout("slow"))
    error = failure_of(timeout=(1.5, 30))
    assert isinstance(error, StreamTimeoutError) and isinstance(error, TimeoutError) and "1.5 s" in str(error)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "header, seconds",
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (email.utils.formatdate(NOW + 120, usegmt=True), 120.0), (email.utils.formatdate(NOW - 60, usegmt=True), 0.0), ("soon", None), (None, None)],
)
def test_rate_limit_retry_after_from_seconds_or_an_http_date(routed: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, header: Optional[str], seconds: Optional[float]) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)
    routed.post(URL, status=429, json={"error": "slow down"}, headers={"Retry-After": header} if header else None)
    error = failure_of()
    assert isinstance(error, RateLimitError) and error.retry_after == seconds


def test_hub_errors_name_the_model_and_url_and_carry_the_hubs_message(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, status=500, json={"error": "hub is down"})
    error = failure_of()
    assert type(error) is ResponseStatusError and error.status_code == 500
    assert f"HTTP 500 from provider mapping of '{MODEL}', {MAPPING_URL}?" in str(error)
    assert "hub is down" in str(error) and getattr(error, "server_message") == "hub is down"


# -- the token never shows ------------------------------------------------------------------------------

def echoes(secret: str) -> Dict[str, Dict[str, Any]]:
    """Error answers that repeat ``secret`` back, by case name."""
    echo = f"your token {secret} (Bearer {secret}) was refused"
    return {
        "401 body": {"status": 401, "json": {"error": {"message": echo}}},
        "402 body": {"status": 402, "json": {"error": echo}},
        "429 header": {"status": 429, "json": {"error": "x"}, "headers": {"X-Error-Message": echo}},
        "500 html title": {"status": 500, "body": f"<html><title>{echo}</title></html>", "content_type": "text/html"},
        "500 plain text": {"status": 500, "body": echo, "content_type": "text/plain"},
        "200 error body": {"status": 200, "json": {"error": echo}},
    }


def shown(error: BaseException, caplog: pytest.LogCaptureFixture) -> List[str]:
    """Every way an error or a log line may show a value."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(type(error), error, error.__traceback__)), caplog.text]
    texts += [str(getattr(error, name, "")) for name in ("message", "server_message", "attempts")]
    texts += [f"{name}: {failure!s} {failure!r}" for name, failure in getattr(error, "attempts", [])]
    return texts + [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("secret", [TOKEN, "plain-looking-secret-value"])
@pytest.mark.parametrize("case", list(echoes(TOKEN)))
def test_no_error_or_log_line_shows_the_token_even_when_the_server_echoes_it(
    routed: responses.RequestsMock, caplog: pytest.LogCaptureFixture, case: str, secret: str
) -> None:
    caplog.set_level(logging.DEBUG)
    routed.post(URL, **echoes(secret)[case])
    error = failure_of(api_key=secret)
    assert routed.calls[-1].request.headers["Authorization"] == f"Bearer {secret}"
    assert [text for text in shown(error, caplog) if secret in text] == []


@pytest.mark.parametrize("status", [401, 500])
def test_the_hub_echoing_the_token_does_not_show_it(mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture, status: int) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"your token {TOKEN} was refused"
    mock.get(MAPPING_URL, status=status, json={"error": echo}, headers={"X-Error-Message": echo})
    with pytest.raises(HFTextGenError) as raised:
        HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN)
    assert [text for text in shown(raised.value, caplog) if TOKEN in text] == []
