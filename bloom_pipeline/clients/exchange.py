"""One HTTP/1.1 request and its answer on a kept-alive urllib3 connection, without ``http.client``'s machinery.

Why: on a first load the write threads spent most of their CPU in the HTTP stack rather than in the sync —
``http.client`` builds the request one ``putheader`` at a time and parses every answer's headers with the
``email`` package, and urllib3 wraps both (a loopback POST ~0.3 ms of CPU against ~0.04 ms for the same bytes
sent and parsed here, ``benchmarks/README.md``). A first load sends ~12,500 requests. Only the part that
repeats is done here; everything else stays urllib3's own:

* connections are made, verified (TLS) and kept by urllib3's pool, which also decides that a kept connection
  the server has closed meanwhile is not reused; only a connection that is already open is used here, so every
  failure to connect is still raised by urllib3 (``clients/http.py`` tells a failure to connect from a lost
  answer by those exceptions);
* the request is the bytes urllib3 writes for the same call, in the same order (``Host``, ``Content-Length``,
  then the session's headers as given; ``Content-Length: 0`` for a PUT or POST without a body;
  ``tests/unit/clients/test_exchange.py`` compares the bytes), with the same checks on the method, the path
  and the header names and values (the same exceptions);
* the answer is read as ``http.client`` reads it — status line, ``100 Continue`` skipped, header lines (a folded
  or otherwise unusual header block is parsed by ``http.client`` itself), a body by ``Content-Length``, chunked,
  or to the connection's end, no body for 1xx / 204 / 304 / HEAD, the connection closed when the answer says so
  or is not HTTP/1.1 keep-alive — and a ``Content-Encoding`` urllib3 decodes is decoded by urllib3;
* a failure raises what ``HTTPConnectionPool.urlopen`` (``retries=False``) and ``HTTPResponse.read`` raise for
  it, so the caller maps it as before: a socket timeout while waiting for the answer ``ReadTimeoutError``, a
  dropped connection ``ProtocolError``, a truncated body ``ProtocolError`` from the reading side.

A connection that failed or that the answer closes is closed, not kept.
"""

from __future__ import annotations

import errno
import http.client
import io
import re
import socket
import ssl
from typing import Any

import urllib3.connection
import urllib3.util.request
from urllib3 import HTTPConnectionPool, HTTPHeaderDict, HTTPResponse
from urllib3.connection import _normalize_header_values
from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError
from urllib3.util.url import _encode_target

_MAXLINE = http.client._MAXLINE  # what http.client allows a status or header line (65536)
_MAXHEADERS = http.client._MAXHEADERS  # and how many header lines (100)
_METHODS_WITHOUT_BODY = urllib3.util.request._METHODS_NOT_EXPECTING_BODY  # no Content-Length: 0 for these
# the checks urllib3 and http.client make on what they send, the same objects
_METHOD_CONTROL = urllib3.connection._CONTAINS_CONTROL_CHAR_RE
_PATH_CONTROL = http.client._contains_disallowed_url_pchar_re
_LEGAL_NAME = http.client._is_legal_header_name
_ILLEGAL_VALUE = http.client._is_illegal_header_value
# what http.client's email parser reads as an ordinary header line's name (feedparser's headerRE, less "From ")
_PLAIN_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+").fullmatch
_SEND_IGNORED = (errno.EPROTOTYPE, errno.ECONNRESET)  # urllib3 reads the answer after these (and a broken pipe)
_BLOCKING = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})  # urllib3's _blocking_errnos: a timeout too
_RECV = 65536


def sendable(headers: dict[str, str]) -> bool:
    """Whether urllib3 sends ``headers`` exactly as they are, after its ``Host`` and ``Content-Length`` lines:
    they name no ``Host``, ``Content-Length`` or ``Transfer-Encoding`` (urllib3 would leave its own out) and do
    name ``Accept-Encoding`` and ``User-Agent`` (else http.client and urllib3 add theirs)."""
    names = {name.lower() for name in headers}
    return not names & {"host", "content-length", "transfer-encoding"} and {"accept-encoding", "user-agent"} <= names


def header_block(headers: dict[str, str]) -> bytes:
    """The header lines ``http.client.putheader`` writes for ``headers`` (``sendable``), in their order, with its
    checks (the same ``ValueError``s)."""
    lines = []
    for name, value in headers.items():
        raw_name = name.encode("ascii")
        if not _LEGAL_NAME(raw_name):
            raise ValueError(f"Invalid header name {raw_name!r}")
        raw_value = value.encode("latin-1") if isinstance(value, str) else str(value).encode("ascii")
        if _ILLEGAL_VALUE(raw_value):
            raise ValueError(f"Invalid header value {raw_value!r}")
        lines.append(raw_name + b": " + raw_value + b"\r\n")
    return b"".join(lines)


def host_header(conn: Any) -> bytes:
    """``http.client.putrequest``'s ``Host`` value for a connection (the port only when not the default)."""
    host = conn.host
    try:
        encoded = host.encode("ascii")
    except UnicodeEncodeError:
        encoded = host.encode("idna")
    if ":" in host:
        encoded = http.client._strip_ipv6_iface(b"[" + encoded + b"]")
    if conn.port == conn.default_port:
        return encoded
    return f"{encoded.decode('ascii')}:{conn.port}".encode("latin-1")


def request_bytes(method: str, target: str, host: bytes, headers: bytes, body: bytes | None) -> bytes:
    """What urllib3's ``HTTPConnection.request`` sends for ``method target`` with ``headers`` (a ``header_block``)
    and ``body``, with its checks: a method's or path's control characters (``ValueError``, ``InvalidURL``)."""
    if match := _METHOD_CONTROL.search(method):
        raise ValueError(f"Method cannot contain non-token characters {method!r} (found at least {match.group()!r})")
    if match := http.client._contains_disallowed_method_pchar_re.search(method):
        raise ValueError(f"method can't contain control characters. {method!r} (found at least {match.group()!r})")
    if match := _PATH_CONTROL.search(target):
        raise http.client.InvalidURL(f"URL can't contain control characters. {target!r} "
                                     f"(found at least {match.group()!r})")
    head = f"{method} {target or '/'} HTTP/1.1\r\n".encode("ascii") + b"Host: " + host + b"\r\n"
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    elif method.upper() not in _METHODS_WITHOUT_BODY:
        head += b"Content-Length: 0\r\n"
    return head + headers + b"\r\n" + (body or b"")


class _Reader:
    """The socket's bytes, read as ``http.client``'s buffered file reads them (lines, exact counts, to the end).

    The buffer is a ``bytearray``: bytes already read are dropped from its front and new ones appended in place,
    so a large answer read in many ``recv``s is not copied again at each one."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.pos = sock, bytearray(), 0

    def _more(self) -> bool:
        data = self.sock.recv(_RECV)
        if not data:
            return False
        del self.buf[:self.pos]
        self.buf += data
        self.pos = 0
        return True

    def readline(self, limit: int) -> bytes:
        """Up to and with the next ``\\n``, at most ``limit`` bytes; less at the connection's end."""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0 and end - self.pos < limit:
                line = bytes(self.buf[self.pos:end + 1])
                self.pos = end + 1
                return line
            if len(self.buf) - self.pos >= limit or not self._more():
                line = bytes(self.buf[self.pos:self.pos + limit])
                self.pos += len(line)
                return line

    def read(self, count: int) -> bytes:
        """Exactly ``count`` bytes, or ``IncompleteRead`` with what came."""
        while len(self.buf) - self.pos < count:
            if not self._more():
                partial = bytes(self.buf[self.pos:])
                self.pos = len(self.buf)
                raise http.client.IncompleteRead(partial, count - len(partial))
        data = bytes(self.buf[self.pos:self.pos + count])
        self.pos += count
        return data

    def read_to_end(self) -> bytes:
        while self._more():
            pass
        data = bytes(self.buf[self.pos:])
        self.pos = len(self.buf)
        return data


def _read_status(reader: _Reader) -> tuple[int, int, str]:
    """``http.client.HTTPResponse._read_status`` and the version check of ``begin``."""
    line = str(reader.readline(_MAXLINE + 1), "iso-8859-1")
    if len(line) > _MAXLINE:
        raise http.client.LineTooLong("status line")
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    try:
        version, status, reason = line.split(None, 2)
    except ValueError:
        try:
            version, status = line.split(None, 1)
            reason = ""
        except ValueError:
            version = ""
    if not version.startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    try:
        code = int(status)
    except ValueError:
        raise http.client.BadStatusLine(line) from None
    if code < 100 or code > 999:
        raise http.client.BadStatusLine(line)
    if version == "HTTP/1.0":
        number = 10
    elif version.startswith("HTTP/1."):
        number = 11
    else:
        raise http.client.UnknownProtocol(version)
    return number, code, reason.strip()


def _header_lines(reader: _Reader) -> list[bytes]:
    """``http.client._read_headers``: the lines up to the blank one."""
    lines = []
    while True:
        line = reader.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return lines
        lines.append(line)
        if len(lines) > _MAXHEADERS:
            raise http.client.HTTPException(f"got more than {_MAXHEADERS} headers")


def _header_items(lines: list[bytes]) -> list[tuple[str, str]]:
    """(name, value) of each header as ``http.client`` parses them and urllib3 normalises them.

    The usual block — every line ``Name: value`` — is split here (compat32: the value without its leading blanks
    and line end); anything else (a folded line, a line without a colon, a blank in a name) goes to
    ``http.client.parse_headers``, whose ``email`` parser has the rules for it."""
    items = []
    for line in lines:
        name, colon, value = line.partition(b":")
        value = value.rstrip(b"\r\n")
        if not colon or not _PLAIN_NAME(name) or b"\r" in value or b"\n" in value:
            message = http.client.parse_headers(io.BytesIO(b"".join(lines) + b"\r\n"))
            return _normalize_header_values(message)
        items.append((name.decode("iso-8859-1"), value.decode("iso-8859-1").lstrip(" \t")))
    return items


def _first(items: list[tuple[str, str]], name: str) -> str | None:
    """``HTTPMessage.get``: the first value of a header."""
    for key, value in items:
        if key.lower() == name:
            return value
    return None


def _will_close(version: int, items: list[tuple[str, str]]) -> bool:
    """``http.client.HTTPResponse._check_close``."""
    conn = _first(items, "connection")
    if version == 11:
        return bool(conn and "close" in conn.lower())
    if _first(items, "keep-alive"):
        return False
    if conn and "keep-alive" in conn.lower():
        return False
    proxy = _first(items, "proxy-connection")
    return not (proxy and "keep-alive" in proxy.lower())


def _read_chunked(reader: _Reader) -> bytes:
    """``http.client``'s chunked body: sizes in hex (extensions dropped), the trailer read and discarded."""
    parts = []
    while True:
        line = reader.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise http.client.LineTooLong("chunk size")
        cut = line.find(b";")
        try:
            size = int(line[:cut] if cut >= 0 else line, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            while True:
                trailer = reader.readline(_MAXLINE + 1)
                if len(trailer) > _MAXLINE:
                    raise http.client.LineTooLong("trailer line")
                if trailer in (b"\r\n", b"\n", b""):
                    return b"".join(parts)
        try:
            parts.append(reader.read(size))
        except http.client.IncompleteRead as exc:
            raise http.client.IncompleteRead(b"".join(parts) + exc.partial) from None
        reader.read(2)  # the CRLF after the chunk


class Kept:
    """What an answer on a kept connection was: its status, reason, headers (urllib3's) and decoded body."""

    __slots__ = ("content", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: HTTPHeaderDict, content: bytes) -> None:
        self.status, self.reason, self.headers, self.content = status, reason, headers, content


class ExchangeError(Exception):
    """A failed exchange: ``cause`` is what urllib3 raises for it, ``reading`` whether urllib3 raises it from
    ``HTTPResponse.read`` (the body) rather than ``urlopen`` (sending, the status line and headers) — ``requests``
    maps some causes differently by where they come from."""

    def __init__(self, cause: Exception, reading: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause, self.reading = cause, reading


def exchange(pool: HTTPConnectionPool, method: str, target: str, request: Any,
             timeout: tuple[float | None, float | None]) -> Kept | None:
    """Send on one of ``pool``'s open connections and read the answer; None when the pool has no open connection
    (then nothing was sent: the caller sends through urllib3, which connects).

    ``target``: the path and query, as given to ``urlopen``. ``request(conn, target)`` returns the bytes to send
    (``request_bytes``; what it raises is raised as it is, as urllib3 raises those checks' errors). ``timeout``:
    (connect, read) seconds — the socket's timeout while sending (urllib3's) and while reading. Failures raise
    ``ExchangeError``. The connection goes back to the pool after an answer read whole that leaves it open (as
    ``urlopen`` closes it on any exception)."""
    target = _encode_target(target)  # what urlopen sends for a target (percent-encoded, dot segments resolved)
    conn = pool._get_conn()
    if conn.is_closed:  # a fresh connection, or a kept one the server closed: urllib3 connects it
        pool._put_conn(conn)
        return None
    keep = False
    reading = False
    try:
        try:
            data = request(conn, target)
        except http.client.InvalidURL as exc:  # an HTTPException: urlopen raises it as a ProtocolError
            raise ExchangeError(ProtocolError("Connection aborted.", exc), False) from exc
        sock = conn.sock
        try:
            sock.settimeout(timeout[0])
            try:
                sock.sendall(data)
            except BrokenPipeError:
                pass
            except OSError as exc:
                if isinstance(exc, ssl.SSLError) or exc.errno not in _SEND_IGNORED:
                    raise
            sock.settimeout(timeout[1])
            reader = _Reader(sock)
            version, status, reason = _read_status(reader)
            while status == 100:
                _header_lines(reader)
                version, status, reason = _read_status(reader)
            items = _header_items(_header_lines(reader))
            reading = True
            headers = HTTPHeaderDict(items)
            encoding = _first(items, "transfer-encoding")
            chunked = bool(encoding and encoding.lower() == "chunked")
            will_close = _will_close(version, items)
            length: int | None = None
            declared = _first(items, "content-length")
            if declared and not chunked:
                try:
                    length = int(declared)
                except ValueError:
                    length = None
                else:
                    length = None if length < 0 else length
            if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
                length = 0
            if not chunked and length is None:
                will_close = True
            if chunked:
                body = _read_chunked(reader)
            elif length is not None:
                body = reader.read(length)
            else:
                body = reader.read_to_end()
        except ssl.SSLError as exc:  # urllib3: SSLError, or a read timeout while reading the body
            if reading and "read operation timed out" in str(exc):
                raise ExchangeError(ReadTimeoutError(pool, None, "Read timed out."), True) from exc
            raise ExchangeError(SSLError(exc), reading) from exc
        except OSError as exc:  # socket.timeout is TimeoutError, an OSError
            if isinstance(exc, TimeoutError) or exc.errno in _BLOCKING:
                message = "Read timed out." if reading else f"Read timed out. (read timeout={timeout[1]})"
                raise ExchangeError(ReadTimeoutError(pool, None if reading else target, message), reading) from exc
            cause = ProtocolError(f"Connection broken: {exc!r}" if reading else "Connection aborted.", exc)
            raise ExchangeError(cause, reading) from exc
        except http.client.HTTPException as exc:  # IncompleteRead included, as urllib3's _error_catcher sees it
            cause = ProtocolError(f"Connection broken: {exc!r}" if reading else "Connection aborted.", exc)
            raise ExchangeError(cause, reading) from exc
        # the answer is read whole: the connection is kept unless the answer closes it (bytes beyond it are
        # dropped with it, as http.client drops what its buffered reader held past a response)
        keep = not will_close
        coding = headers.get("content-encoding")
        if coding and body:
            try:
                body = _decoded(body, headers, status, reason, version)
            except urllib3.exceptions.HTTPError as exc:
                raise ExchangeError(exc, True) from exc
        return Kept(status, reason, headers, body)
    finally:
        if keep:
            pool._put_conn(conn)
        else:
            conn.close()
            pool._put_conn(None)


def _decoded(body: bytes, headers: HTTPHeaderDict, status: int, reason: str, version: int) -> bytes:
    """The body decoded as urllib3 decodes its ``Content-Encoding`` (left as it came where urllib3 leaves it)."""
    response = HTTPResponse(body=io.BytesIO(body), headers=headers, status=status, reason=reason, version=version,
                            preload_content=False, decode_content=True, enforce_content_length=False)
    return response.read(decode_content=True)
