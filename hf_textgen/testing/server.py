"""The HTTP/1.1 server and its handler: read a request, record it, write what was decided. I/O only.

What to answer is decided elsewhere (:meth:`StubServer._answer`); this module only moves bytes. A
client that resets, closes early or times out is normal here: it is logged at debug level and nothing
is printed. Any other exception is a bug of the stand-in and is logged as an error with its traceback.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

from .answers import Answer, Stream, json_reply

logger = logging.getLogger(__name__)

AnswerFn = Callable[[str, str, Optional[str], bytes], Answer]
RecordFn = Callable[[str, str, Iterable[Tuple[str, str]], bytes], None]
#: What a client does to a connection without any bug on either side.
CLIENT_GONE = (ConnectionError, TimeoutError, socket.timeout)  # socket.timeout is TimeoutError from 3.10


class HTTPServer(ThreadingHTTPServer):
    """Threaded server that can close the connections it still holds (idle keep-alive, open streams)."""

    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: a burst of clients must not wait for SYN retries

    def __init__(self, address: Tuple[str, int], answer: AnswerFn, record: RecordFn, stopping: threading.Event) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.answer, self.record, self.stopping = answer, record, stopping
        self._open: Dict[socket.socket, Optional[threading.Thread]] = {}
        self._open_lock = threading.Lock()
        self.streams_open = 0  # streamed answers being written now
        self.streams_abandoned = 0  # streamed answers the client closed before their end
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: it resolves the host name (getfqdn)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = None
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = threading.current_thread()
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Not socketserver's traceback on stderr: a client going away is debug, anything else an error."""
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_GONE):
            logger.debug("client %s went away: %r", client_address, error)
        else:
            logger.error("hf_textgen stub failed on a request from %s", client_address, exc_info=True)

    def count_stream(self, opened: int, abandoned: int = 0) -> None:
        with self._open_lock:
            self.streams_open += opened
            self.streams_abandoned += abandoned

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._open_lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in still_open:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)


class Handler(BaseHTTPRequestHandler):
    """The I/O: read a request, record it, write what the server's ``answer`` decided."""

    protocol_version = "HTTP/1.1"
    server_version = "hf-textgen-stub"
    timeout = 300
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm holds the
    # second one until the client's delayed ACK, about 40 ms per answer on Linux loopback.
    disable_nagle_algorithm = True
    server: HTTPServer

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except CLIENT_GONE as error:  # a reset keep-alive connection, a broken pipe: normal
            logger.debug("client %s went away: %r", self.address_string(), error)
            self.close_connection = True

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.server.record(self.command, self.path, self.headers.items(), raw)
        try:
            answer = self.server.answer(self.command, self.path, self.headers.get("Authorization"), raw)
        except Exception as exc:  # a stub bug: say so instead of dropping the connection
            logger.exception("stub failed on %s %s", self.command, self.path)
            answer = json_reply(500, {"error": f"hf_textgen stub error: {exc!r}"})
        try:
            if isinstance(answer, Stream):
                self._send_stream(answer)
            elif answer is None or (answer.delay and self.server.stopping.wait(answer.delay)):
                self.close_connection = True
            else:
                self._send_head(answer.status, {**answer.headers, "Content-Length": str(len(answer.body))})
                self.wfile.write(answer.body)
        except OSError:  # the client went away, or stop() closed the connection
            self.close_connection = True

    do_GET = do_POST = _dispatch

    def _send_head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_stream(self, stream: Stream) -> None:
        chunked = stream.provider.framing == "chunked"
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"}
        self.server.count_stream(+1)
        try:
            self._send_head(200, {**stream.headers, **framing})
            for index, event in enumerate(stream.events):
                if event is None or (index and self.server.stopping.wait(stream.provider.delay)):
                    self.close_connection = True
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client closed the stream before its end
            self.server.count_stream(0, abandoned=1)
            raise
        finally:
            self.server.count_stream(-1)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        """Timeouts and malformed requests are the client's business: debug (the request line is logged too)."""
        logger.debug("%s %s", self.address_string(), format % args)
