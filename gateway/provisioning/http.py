"""The provisioning API over HTTP (twisted.web): authentication, JSON in and out, errors.

Every request under ``/v1/`` but the OpenAPI document needs ``Authorization: Bearer
<token>`` (RFC 6750 §2.1), compared in constant time; without it, 401 with
``WWW-Authenticate: Bearer`` (RFC 6750 §3). Bodies are JSON objects (``Content-Type:
application/json``, else 415) of at most ``MAX_BODY_BYTES`` (else 413, counted as the bytes
arrive, so a large upload is not buffered). Every error is ``{"error": {"code", "message"}}``
with the status of ``STATUS_OF_CODE``. One log line per request: method, path, status,
duration; never the token.

The store is called through :class:`gateway.applications.storage.StoreAccess`: in the
reactor thread for SQLite, in its thread pool for PostgreSQL, so the reactor never waits.
"""

from __future__ import annotations

import hmac
import json
import time
import urllib.parse
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from gateway.applications.storage import StoreAccess
from gateway.provisioning import routes
from hss_store.errors import StoreError
from hss_store.operations import ProvisioningError, code_of

log = Logger(namespace="cxgw.provisioning")

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a subscriber or a pool page; bulk loads go through the CLI
PREFIX = "v1"
OPENAPI = "openapi.json"
UNAUTHENTICATED = "unauthenticated"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"

# error code -> HTTP status (docs/openapi.json lists the same codes)
STATUS_OF_CODE = {
    "invalid_argument": 400,
    "unsupported": 400,
    UNAUTHENTICATED: 401,
    "forbidden": 403,
    "not_found": 404,
    routes.METHOD_NOT_ALLOWED: 405,
    "conflict": 409,
    PAYLOAD_TOO_LARGE: 413,
    UNSUPPORTED_MEDIA_TYPE: 415,
    "internal": 500,
    "unavailable": 503,
}


class CappedRequest(Request):
    """A Request that stops keeping body bytes past MAX_BODY_BYTES (and says so)."""

    too_large = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY_BYTES:
            self.too_large = True
            length = 0  # keep nothing: the body is refused anyway
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        if self.content.tell() + len(data) > MAX_BODY_BYTES:
            self.too_large = True
            return
        super().handleContentChunk(data)


class ProvisioningResource(Resource):
    """Everything below the root: /v1/... (a leaf, so the path is ours to parse)."""

    isLeaf = True

    def __init__(self, access: StoreAccess, token: str, openapi: bytes, clock: Any = time) -> None:
        super().__init__()
        self.access = access
        self._token = token.encode("ascii")
        self.openapi = openapi
        self.clock = clock

    def render(self, request: Request) -> Any:
        started = time.monotonic()
        method = request.method.decode("ascii", "replace")
        raw_path = request.path.decode("ascii", "replace")
        request.notifyFinish().addBoth(lambda _: self._log(method, raw_path, request, started))
        try:
            segments = [urllib.parse.unquote(s, errors="strict") for s in raw_path.split("/")[1:]]
        except UnicodeDecodeError:
            return self._error(request, ProvisioningError("invalid_argument", "the path is not UTF-8 once decoded"))
        if segments[:1] != [PREFIX]:
            return self._error(request, ProvisioningError("not_found", f"no resource {raw_path}; the API is under /v1/"))
        segments = segments[1:]
        if segments == [OPENAPI]:  # public: a client reads the contract before it has a token
            if method not in ("GET", "HEAD"):
                return self._error(request, ProvisioningError(routes.METHOD_NOT_ALLOWED, "use GET"), allow=["GET"])
            return self._json(request, 200, self.openapi)
        if not self._authenticated(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="cxgw-provisioning"')
            return self._error(request, ProvisioningError(
                UNAUTHENTICATED, "missing or wrong bearer token; send Authorization: Bearer <the token of "
                "[provisioning] token_file>"))  # fmt: skip
        try:
            route, params = routes.resolve(method, segments)
            query = routes.parse_query(route, _query(request))
            body = self._body(request) if route.body else None
        except ProvisioningError as error:
            allow = routes.allowed_methods(segments) if error.code == routes.METHOD_NOT_ALLOWED else None
            return self._error(request, error, allow=allow)
        result: Deferred[Any] = self.access.call(_guarded, self.access.store, route, params, query, body)
        result.addCallbacks(lambda done: self._respond(request, *done), lambda failure: self._failed(request, failure))
        return NOT_DONE_YET

    # -- steps ---------------------------------------------------------------------------------
    def _authenticated(self, request: Request) -> bool:
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.partition(b" ")
        # RFC 6750 §2.1: "Bearer" (scheme names are case-insensitive, RFC 9110 §11.1)
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._token)

    def _body(self, request: Request) -> Any:
        if getattr(request, "too_large", False):
            raise ProvisioningError(PAYLOAD_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes; send less per request")
        media = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if media != b"application/json":
            raise ProvisioningError(UNSUPPORTED_MEDIA_TYPE, "send the body as JSON with Content-Type: application/json")
        request.content.seek(0)
        data = request.content.read()
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProvisioningError("invalid_argument", f"the body is not JSON ({_short(exc)}); send a JSON object") from None

    def _respond(self, request: Request, status: int, value: Any) -> None:
        if request.finished or request._disconnected:  # type: ignore[attr-defined]
            return
        self._finish(request, status, json.dumps(value).encode("utf-8"))

    def _failed(self, request: Request, failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, StoreError):
            log.failure("provisioning request failed", failure)
            error = ProvisioningError("internal", "the request failed inside the gateway; see its log")
        if request.finished or request._disconnected:  # type: ignore[attr-defined]
            return
        status, body = _error_body(error)
        self._finish(request, status, body)

    # -- output --------------------------------------------------------------------------------
    def _json(self, request: Request, status: int, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return body

    def _finish(self, request: Request, status: int, body: bytes) -> None:
        request.write(self._json(request, status, body))
        request.finish()

    def _error(self, request: Request, error: StoreError, allow: list[str] | None = None) -> bytes:
        if allow:
            request.setHeader(b"allow", ", ".join(allow).encode("ascii"))
        status, body = _error_body(error)
        return self._json(request, status, body)

    def _log(self, method: str, path: str, request: Request, started: float) -> None:
        line = f"{method} {path} {request.code} {(time.monotonic() - started) * 1000:.1f} ms"
        log.info(line.replace("{", "{{").replace("}", "}}"))  # the facts are the message, said once


def _guarded(store: Any, route: routes.Route, params: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    """routes.call; a bug (any exception but a StoreError) logged and answered 500, never
    mistaken for an unavailable store."""
    try:
        return routes.call(store, route, params, query, body)
    except StoreError:
        raise
    except Exception as exc:
        log.failure("provisioning {route} failed", Failure(), route=" ".join((route.method, *route.pattern)))
        raise ProvisioningError("internal", "the request failed inside the gateway; see its log") from exc


def _error_body(error: StoreError) -> tuple[int, bytes]:
    code = code_of(error)
    body = {"error": {"code": code, "message": str(error)}}
    return STATUS_OF_CODE.get(code, 500), json.dumps(body).encode("utf-8")


def _query(request: Request) -> dict[str, list[str]]:
    raw = request.uri.partition(b"?")[2].decode("ascii", "replace")
    try:
        return urllib.parse.parse_qs(raw, keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProvisioningError("invalid_argument", f"the query string is malformed ({_short(exc)})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__


class ProvisioningSite(Site):
    """The API's Site: capped requests, our own one-line log per request (not Twisted's)."""

    requestFactory = CappedRequest  # type: ignore[assignment]
    noisy = False

    def log(self, request: Request) -> None:
        """Logged by ProvisioningResource (method, path, status, duration), not as access log."""
