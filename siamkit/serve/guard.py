"""What the web server lets in: requests addressed to it (Host/Origin), and uploads read as a bounded stream.

- ``Host`` must name the address being served (DNS rebinding: a page on ``evil.example`` that
  resolves to 127.0.0.1 still sends ``Host: evil.example``), and a browser's ``Origin``, when
  sent, must be that same address (another site open in the user's browser cannot drive the
  server). IP literals are always accepted on a wildcard bind (no DNS name, no rebinding).
- Upload bodies are read chunk by chunk and written straight to disk; the size limit is checked
  on every chunk, so an oversized upload stops at the limit instead of being spooled whole first.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from python_multipart.multipart import MultipartParser, parse_options_header

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
FORM_OVERHEAD = 64 * 1024  # multipart headers and boundaries allowed beyond the file's own bytes


class UploadTooLarge(Exception):
    """The upload went past its limit (HTTP 413)."""


class BadUpload(Exception):
    """The request body is not an upload the server understands (HTTP 400)."""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class HostCheck:
    """Decides whether a ``Host`` / ``Origin`` value addresses the server bound to ``host``:``port``."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, extra: list[str] | tuple[str, ...] = ()):
        self.port = port
        self.wildcard = host in WILDCARDS
        names = {host.strip("[]").lower(), *(e.lower() for e in extra)}
        if self.wildcard or host in LOOPBACK_NAMES:
            names |= set(LOOPBACK_NAMES)
        self.names = names - {""}

    def allows(self, netloc: str) -> bool:
        parts = urlsplit(f"//{netloc}")
        try:
            name, port = (parts.hostname or "").lower(), parts.port
        except ValueError:  # a port that is not a number
            return False
        if self.port is not None and port is not None and port != self.port:
            return False
        return name in self.names or (self.wildcard and _is_ip(name))

    def origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and self.allows(parts.netloc)


async def receive_upload(request, path: Path, max_bytes: int) -> int:
    """Stream the request's file (multipart field ``file``, or the raw body) into ``path``.

    Raises :class:`UploadTooLarge` as soon as the file passes ``max_bytes`` (nothing more is
    read) and :class:`BadUpload` when a multipart body holds no file. Returns the file's size.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise UploadTooLarge  # said so up front: no byte needs to be read
    size = 0
    body = 0
    with path.open("wb") as out:
        if ctype == b"multipart/form-data":
            writer = _FileField(out, max_bytes)
            boundary = params.get(b"boundary")
            if not boundary:
                raise BadUpload("The multipart upload has no boundary.")
            parser = MultipartParser(boundary, writer.callbacks())
            async for chunk in request.stream():
                body += len(chunk)
                if body > max_bytes + FORM_OVERHEAD:
                    raise UploadTooLarge
                parser.write(chunk)
            parser.finalize()
            if not writer.seen:
                raise BadUpload("The form holds no field named 'file'.")
            size = writer.size
        else:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge
                out.write(chunk)
    return size


class _FileField:
    """python-multipart callbacks that write the first part named ``file`` and count its bytes."""

    def __init__(self, out, max_bytes: int):
        self.out, self.max_bytes = out, max_bytes
        self.size, self.seen, self.active = 0, False, False
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self.active = {}, False

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self.active = options.get(b"name") == b"file" and not self.seen

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.active:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadTooLarge
            self.out.write(data[start:end])

    def _end(self) -> None:
        if self.active:
            self.seen, self.active = True, False
