"""HTTP/1.1 over a plain socket, for what an HTTP client library will not do: send a
``Content-Length`` that lies, write a chunked body piece by piece on ``sock`` while the answer
may already be on its way, and show whether the server kept the keep-alive connection (one
socket, several requests).

    with Conn.to("http://127.0.0.1:8000") as c:
        c.send("POST", "/v1/posts", headers={"Content-Length": str(2**30)})   # no body follows
        status, headers, body = c.response()
    with Conn.to("http://127.0.0.1:8000") as c:
        c.request("POST", "/v1/chat/completions", b"[" * 100)         # refused...
        assert c.is_open()                                           # ...and the socket kept
"""
from __future__ import annotations

import socket
from urllib.parse import urlsplit


class Closed(Exception):
    """The server closed (or reset) the connection before a whole response arrived."""


class Conn:
    """One keep-alive connection to ``host:port``."""

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        self.host = f"{host}:{port}"
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    @classmethod
    def to(cls, url: str, timeout: float = 30.0) -> Conn:
        u = urlsplit(url)
        return cls(u.hostname or "127.0.0.1", u.port or 80, timeout)

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # --- sending ----------------------------------------------------------------------------------
    def send(self, method: str, path: str, body: bytes | None = None, *,
             headers: dict[str, str] | None = None) -> None:
        """The request line and headers, then ``body`` if given (with its ``Content-Length``
        unless ``headers`` sets one: set one to lie)."""
        h = {"Host": self.host, **(headers or {})}
        if body is not None and not any(k.lower() == "content-length" for k in h):
            h["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))

    def request(self, method: str, path: str, body: bytes | None = None, *,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        self.send(method, path, body, headers=headers)
        return self.response()

    # --- reading ----------------------------------------------------------------------------------
    def _more(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError as e:
            raise Closed(f"connection reset: {e}") from None
        if not data:
            raise Closed("the server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body (de-chunked)."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._line().split(b";")[0], 16):
                body += self._exactly(size)
                self._line()
            while self._line():           # trailers, then the blank line
                pass
        else:
            body = self._exactly(int(headers.get("content-length", "0")))
        return status, headers, body

    def is_open(self) -> bool:
        """Whether the server still holds the connection: a request on it gets an answer."""
        try:
            status, _, _ = self.request("GET", "/health")
        except (Closed, BrokenPipeError, ConnectionResetError, TimeoutError):
            return False
        return status == 200
