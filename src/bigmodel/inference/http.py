"""HTTP-level request checks in front of the LitServe endpoint, as a plain ASGI middleware.

LitServe hands ``/predict`` bodies to the inference worker as parsed JSON or form data, and answers a body
it cannot parse with a 500. This gate runs first, in the API process, so every client fault is a 4xx
``{"error": ...}`` and never reaches (or stops) the worker:

- a body over ``max_body_bytes`` -> 413 (checked on ``Content-Length`` and while reading);
- a content type other than ``application/json`` or ``multipart/form-data`` -> 415;
- JSON that does not parse, or is not an object -> 400;
- a multipart upload is rewritten to JSON (``{"file": <base64>, "filename": ...}`` from the field ``file``,
  or ``{"text": ...}`` from a ``text`` field), parsed with the standard library's ``email`` parser; one with
  neither field -> 400.
"""

from __future__ import annotations

import base64
import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI answers ``{"detail": ...}``; our servers answer ``{"error": ...}`` (CONVENTIONS.md)."""
    return error_response(exc.status_code, str(exc.detail))


def multipart_to_json(content_type: str, body: bytes) -> dict[str, Any]:
    """The ``file`` (base64) / ``text`` fields of a multipart/form-data body.

    Raises:
        ValueError: no ``file`` or ``text`` field (the message lists the fields found).
    """
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in msg.iter_parts() if msg.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"", part.get_filename())
    if "file" in fields:
        data, filename = fields["file"]
        return {"file": base64.b64encode(data).decode("ascii"), "filename": filename or "upload"}
    if "text" in fields:
        return {"text": fields["text"][0].decode("utf-8", errors="replace")}
    raise ValueError(
        f"multipart upload has no field 'file' (or 'text'); fields found: {sorted(fields) or 'none'}. "
        "Send it as -F file=@<path>."
    )


class RequestGate:
    """ASGI middleware guarding ``POST <path>`` (see the module docstring)."""

    def __init__(self, app: Any, path: str = "/predict", max_body_bytes: int = 10 << 20) -> None:
        self.app, self.path, self.max_body_bytes = app, path, int(max_body_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = await self._check(headers, receive)
        if isinstance(problem, JSONResponse):
            await problem(scope, receive, send)
            return
        body, ctype = problem
        new_headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in (b"content-type", b"content-length")
        ]
        new_headers += [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()  # only a disconnect can follow
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": new_headers}, replay, send)

    async def _check(self, headers: dict[str, str], receive: Any) -> JSONResponse | tuple[bytes, str]:
        limit = self.max_body_bytes
        too_big = error_response(
            413, f"request body is larger than the server's limit of {limit} bytes (max_body_bytes)"
        )
        if int(headers.get("content-length") or 0) > limit:
            return too_big
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return error_response(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_big
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                return json.dumps(multipart_to_json(ctype, body)).encode(), "application/json"
            except ValueError as e:
                return error_response(400, str(e))
        if ctype.split(";")[0].strip() != "application/json":
            return error_response(
                415, f"content type {ctype or '(none)'!r} is not supported: send application/json "
                '({"image"|"audio": <base64>} or {"text": "..."}) or multipart/form-data with a field "file"',
            )  # fmt: skip
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            return error_response(400, f"body is not valid JSON ({e})")
        if not isinstance(payload, dict):
            return error_response(
                400, 'JSON body must be an object: {"image"|"audio": <base64>} or {"text": "..."}'
            )
        return body, "application/json"
