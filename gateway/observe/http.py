"""The operator's HTTP endpoint (twisted.web): ``/metrics`` for Prometheus, ``/health``.

``/metrics`` renders the registry in the text format 0.0.4. ``/health`` asks a callback
of the node, which answers whether the node can serve (for instance: at least one peer
per route is open) and the state of each peer; the answer is JSON, with status 200 when
healthy and 503 otherwise, so a load balancer or an orchestrator can act on the code
alone. Anything else is 404; methods other than GET and HEAD are 405.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.logger import Logger
from twisted.web import pages
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from gateway.observe.metrics import CONTENT_TYPE, Registry

log = Logger()


class Health(NamedTuple):
    """What the node's health callback returns."""

    healthy: bool
    peers: Mapping[str, Any]  # peer host -> its state (or any JSON-able detail)
    problems: Sequence[str] = ()  # why the node is degraded: it serves, but not everything


HealthCallback = Callable[[], Health | tuple[bool, Mapping[str, Any]]]


class _Root(Resource):
    """``/``: only its children exist (an escaped 404 page for anything else)."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return pages.notFound()

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        return b"see /metrics and /health\n"


class _Endpoint(Resource):
    """A leaf that answers GET and HEAD; other methods get 405 with an Allow header."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD")
            request.setHeader(b"content-type", b"text/plain")
            return b"use GET\n"
        return super().render(request)


class MetricsResource(_Endpoint):
    """``GET /metrics``: the registry in the Prometheus text format 0.0.4."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE.encode())
        request.setHeader(b"cache-control", b"no-store")
        return self.registry.expose().encode("utf-8")


class HealthResource(_Endpoint):
    """``GET /health``: 200 ``{"status": "ok", "peers": {...}}`` or 503."""

    def __init__(self, health_callback: HealthCallback) -> None:
        super().__init__()
        self.health_callback = health_callback

    def render_GET(self, request: Request) -> bytes:
        try:
            health = Health(*self.health_callback())
            healthy = health.healthy
            body: dict[str, Any] = {
                "status": "unavailable" if not healthy else "degraded" if health.problems else "ok",
                "peers": dict(health.peers),
            }
            if health.problems:
                body["problems"] = list(health.problems)
        except Exception as exc:  # a broken callback must not look healthy
            log.failure("health callback failed")
            healthy, body = False, {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(body, sort_keys=True, default=str).encode("utf-8") + b"\n"


class _QuietSite(Site):
    """A Site without access logs: a scrape every few seconds is not news."""

    def log(self, request: Request) -> None:
        """No access log: a scrape every few seconds is not news."""


def build_site(registry: Registry, health_callback: HealthCallback) -> Site:
    """The resource tree, without listening (for tests and for embedding)."""
    root = _Root()
    root.putChild(b"metrics", MetricsResource(registry))
    root.putChild(b"health", HealthResource(health_callback))
    site = _QuietSite(root)
    site.noisy = False
    return site


def start_http(
    reactor: IReactorTCP,
    address: str,
    port: int,
    registry: Registry,
    health_callback: HealthCallback,
) -> IListeningPort:
    """Listen on ``address:port`` (port 0: the OS picks; see ``getHost().port``)."""
    listening = reactor.listenTCP(port, build_site(registry, health_callback), interface=address)
    host = listening.getHost()
    log.info("metrics and health on http://{address}:{port}/", address=host.host, port=host.port)
    return listening
