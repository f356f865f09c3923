"""gateway.observe.http: /metrics and /health on a real port (127.0.0.1:0), fetched with Agent."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.web.client import Agent, ResponseDone

from gateway.observe.http import Health, start_http
from gateway.observe.metrics import GatewayMetrics


@pytest.fixture
def metrics():
    metrics = GatewayMetrics()
    metrics.set_peer_state("hss.b.net", "I-Open")
    metrics.messages.labels("hss.b.net", "in", "MAA", "2001").inc()
    return metrics


@pytest.fixture
def health():
    state = {"healthy": True, "peers": {"hss.b.net": "I-Open"}}

    def callback():
        if state.get("raise"):
            raise RuntimeError("store gone")
        return Health(state["healthy"], state["peers"], state.get("problems", ()))

    callback.state = state
    return callback


@pytest_twisted.async_yield_fixture()
async def server(metrics, health):
    port = start_http(reactor, "127.0.0.1", 0, metrics.registry, health)
    yield f"http://127.0.0.1:{port.getHost().port}"
    await port.stopListening()


class BodyCollector(protocol.Protocol):
    """Reads a response body (readBody warns about the client's transport proxy)."""

    def __init__(self):
        self.chunks = []
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.chunks.append(data)

    def connectionLost(self, reason=protocol.connectionDone):
        if reason.check(ResponseDone):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)


@pytest_twisted.inlineCallbacks
def fetch(url, method=b"GET"):
    agent = Agent(reactor)
    response = yield agent.request(method, url.encode())
    collector = BodyCollector()
    response.deliverBody(collector)
    body = yield collector.done
    return response, body


def header(response, name):
    return response.headers.getRawHeaders(name)[0]


@pytest_twisted.inlineCallbacks
def test_metrics_endpoint(server, metrics):
    response, body = yield fetch(server + "/metrics")
    assert response.code == 200
    assert header(response, "content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert body.decode() == metrics.registry.expose()
    assert 'diameter_peer_state{peer="hss.b.net",state="I-Open"} 1' in body.decode()


@pytest_twisted.inlineCallbacks
def test_metrics_reflect_updates(server, metrics):
    metrics.messages.labels("hss.b.net", "in", "MAA", "2001").inc(4)
    _, body = yield fetch(server + "/metrics")
    assert 'diameter_messages_total{peer="hss.b.net",direction="in",command="MAA",result="2001"} 5' in body.decode()


@pytest_twisted.inlineCallbacks
def test_health_ok(server):
    response, body = yield fetch(server + "/health")
    assert response.code == 200
    assert header(response, "content-type") == "application/json"
    assert json.loads(body) == {"status": "ok", "peers": {"hss.b.net": "I-Open"}}


@pytest_twisted.inlineCallbacks
def test_health_unavailable(server, health):
    health.state.update(healthy=False, peers={"hss.b.net": "Closed"})
    response, body = yield fetch(server + "/health")
    assert response.code == 503
    assert json.loads(body) == {"status": "unavailable", "peers": {"hss.b.net": "Closed"}}


@pytest_twisted.inlineCallbacks
def test_health_degraded_says_why(server, health):
    """It serves (200), but a realm it routes to has no peer open."""
    problem = "realm primary.example: no peer open (gw.primary.example Closed)"
    health.state.update(peers={"gw.primary.example": "Closed"}, problems=[problem])
    response, body = yield fetch(server + "/health")
    assert response.code == 200
    assert json.loads(body) == {"status": "degraded", "peers": {"gw.primary.example": "Closed"}, "problems": [problem]}


@pytest_twisted.inlineCallbacks
def test_health_callback_error_is_503(server, health):
    health.state["raise"] = True
    response, body = yield fetch(server + "/health")
    assert response.code == 503
    assert json.loads(body) == {"status": "error", "error": "RuntimeError: store gone"}


@pytest_twisted.inlineCallbacks
def test_health_accepts_a_plain_tuple(metrics):
    port = start_http(reactor, "127.0.0.1", 0, metrics.registry, lambda: (True, {}))
    try:
        response, body = yield fetch(f"http://127.0.0.1:{port.getHost().port}/health")
    finally:
        yield port.stopListening()
    assert response.code == 200 and json.loads(body) == {"status": "ok", "peers": {}}


@pytest_twisted.inlineCallbacks
def test_unknown_path_and_method(server):
    response, _ = yield fetch(server + "/")
    assert response.code == 404
    response, _ = yield fetch(server + "/nope")
    assert response.code == 404
    response, _ = yield fetch(server + "/metrics", method=b"POST")
    assert response.code == 405 and header(response, "allow") == "GET, HEAD"
    response, body = yield fetch(server + "/health", method=b"HEAD")
    assert response.code == 200 and body == b""


@pytest_twisted.inlineCallbacks
def test_listens_on_the_given_address(metrics, health):
    port = start_http(reactor, "127.0.0.1", 0, metrics.registry, health)
    try:
        host = port.getHost()
        assert host.host == "127.0.0.1" and host.port > 0
    finally:
        yield port.stopListening()
