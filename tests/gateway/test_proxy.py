"""gateway.routing.proxy over loopback: a raw client or a client node, the node under test as a
proxy, and one or two server nodes whose Cx application answers (RFC 6733 §6.1, §6.2)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from cx_codec import answer_for, decode
from gateway.settings import PeerSettings, Timers
from gateway.testing.diamtest import (  # the loopback harness the multi-node tests share
    CLIENT,
    CLIENT2,
    CX,
    PARTNER,
    PRIMARY,
    PROXY,
    SERVER_A,
    SERVER_B,
    Answering,
    Net,
    all_open,
    header_of,
    mar,
    route,
    sleep,
    three_nodes,
    wait_for,
)

# -- the proxy's rules (RFC 6733 §6.1.9, §6.2.2) --------------------------------------------


@pytest_twisted.inlineCallbacks
def test_new_hop_by_hop_per_hop_original_restored_end_to_end_untouched():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="proxy -> server open")
        client = yield net.raw_peer(net.ports[PROXY])
        request = mar(end_to_end=0x0BADCAFE, hop_by_hop=0x00005555).encode()
        client.send(request)
        answer = yield client.next()
        seen = apps[SERVER_A].requests
        assert len(seen) == 1
        # the server saw a new hop-by-hop id, the same End-to-End id
        flags, code, app_id, hbh_at_server, e2e_at_server = header_of(seen[0])
        assert (flags, code, app_id) == (0xC0, 303, CX)
        assert hbh_at_server != 0x00005555
        assert e2e_at_server == 0x0BADCAFE
        # the answer carries the original hop-by-hop id again, nothing else changed
        assert (answer.hop_by_hop, answer.end_to_end) == (0x00005555, 0x0BADCAFE)
        assert answer.result_code == 2001
        assert answer["Origin-Host"] == SERVER_A
        sent_by_server = apps[SERVER_A].answers[0]
        assert client.messages[-1] == sent_by_server[:12] + (0x5555).to_bytes(4, "big") + sent_by_server[16:]
        assert len(proxy.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_route_record_appended_and_everything_else_byte_identical():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="proxy -> server open")
        client = yield net.raw_peer(net.ports[PROXY])
        request = mar(end_to_end=7, hop_by_hop=8, route_record=["earlier.partner.example"]).encode()
        client.send(request)
        yield client.next()
        forwarded = apps[SERVER_A].requests[0]
        message = decode(forwarded)  # strictly valid after the proxy
        assert [avp.value for avp in message.find_all("Route-Record")] == ["earlier.partner.example", CLIENT]
        # the request's own bytes are untouched: only the hop-by-hop id and the appended AVP
        assert forwarded[4:12] == request[4:12] and forwarded[16:len(request)] == request[16:]
        assert int.from_bytes(forwarded[1:4], "big") == len(forwarded) > len(request)
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_proxy_info_kept_on_the_request_and_the_answer():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="proxy -> server open")
        client = yield net.raw_peer(net.ports[PROXY])
        info = [{"proxy_host": "p1.partner.example", "proxy_state": b"\x00\x2a"},
                {"proxy_host": "p2.partner.example", "proxy_state": b"state-2"}]
        client.send(mar(end_to_end=9, hop_by_hop=10, proxy_info=info).encode())
        answer = yield client.next()
        at_server = decode(apps[SERVER_A].requests[0])

        def infos(message):
            return [{child.name: child.value for child in avp.children} for avp in message.find_all("Proxy-Info")]

        expected = [{"Proxy-Host": "p1.partner.example", "Proxy-State": b"\x00\x2a"},
                    {"Proxy-Host": "p2.partner.example", "Proxy-State": b"state-2"}]
        assert infos(at_server) == expected
        assert infos(answer) == expected
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_client_node_gets_its_own_hop_by_hop_back():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        client = net.node(CLIENT, PARTNER, peers=[PeerSettings(PROXY, PARTNER, "127.0.0.1", net.ports[PROXY])],
                          routes=[route(PRIMARY, PROXY)], listen=False)
        yield wait_for(lambda: all_open(proxy, SERVER_A)() and all_open(client, PROXY)(), what="open")
        answers = yield defer.gatherResults(
            [client.send_request(mar(end_to_end=0x100 + i, hop_by_hop=0x200 + i)) for i in range(20)]
        )
        assert [header_of(a)[3:] for a in answers] == [(0x200 + i, 0x100 + i) for i in range(20)]
        assert {decode(a).result_code for a in answers} == {2001}
        hops = {header_of(r)[3] for r in apps[SERVER_A].requests}
        assert len(hops) == 20 and not hops & {0x200 + i for i in range(20)}
        assert len(client.pending) == len(proxy.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_failure_result_code_passes_unchanged():
    net = Net()
    try:
        proxy, apps = three_nodes(net, servers=((SERVER_A, Answering(SERVER_A, result_code=5012)),))
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2).encode())
        answer = yield client.next()
        assert answer.result_code == 5012
        assert answer["Origin-Host"] == SERVER_A
        assert proxy.counters.generated == {}
    finally:
        yield net.stop()


# -- loops and routing failures --------------------------------------------------------------


@pytest.mark.parametrize("record", [PROXY, PROXY.upper()])
@pytest_twisted.inlineCallbacks
def test_loop_detected_with_3005(record):
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=0x77, hop_by_hop=0x88, route_record=["x.partner.example", record]).encode())
        answer = yield client.next()
        assert answer.result_code == 3005
        assert answer.is_error
        assert (answer.hop_by_hop, answer.end_to_end) == (0x88, 0x77)
        assert answer["Origin-Host"] == PROXY
        assert apps[SERVER_A].calls == 0
        assert proxy.counters.generated == {3005: 1}
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_no_route_gives_3002_from_the_node_itself():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=0x31, hop_by_hop=0x32, realm="nowhere.example").encode())
        answer = yield client.next()
        assert answer.result_code == 3002
        assert answer.is_error
        assert answer["Origin-Host"] == PROXY
        assert answer["Origin-Realm"] == PARTNER
        assert "no route for realm nowhere.example" in answer["Error-Message"]
        assert (answer.hop_by_hop, answer.end_to_end) == (0x32, 0x31)
        assert apps[SERVER_A].calls == 0
        decode(client.messages[-1])  # a strictly valid answer-message
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_route_to_a_peer_that_is_not_connected_gives_3002():
    net = Net()
    try:
        proxy, apps = three_nodes(net, routes=[route(PRIMARY, SERVER_A), route("down.example", "hss.down.example")])
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2, realm="down.example").encode())
        answer = yield client.next()
        assert answer.result_code == 3002 and answer.is_error
        assert "none of hss.down.example is available" in answer["Error-Message"]
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_the_request_is_never_sent_back_to_the_peer_it_came_from():
    net = Net()
    try:
        # the only route for the realm points back at the client
        proxy, apps = three_nodes(net, routes=[route(PRIMARY, SERVER_A), route(PARTNER, CLIENT)])
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2, realm="PARTNER.example", destination_host="x.partner.example").encode())
        answer = yield client.next()
        assert answer.result_code == 3002
        assert [header_of(m)[1] for m in client.messages[1:]] == [303]
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_destination_host_routing():
    net = Net()
    try:
        proxy, apps = three_nodes(
            net, servers=((SERVER_A, None), (SERVER_B, None)),
            routes=[route(PRIMARY, (SERVER_A, 1, 100), (SERVER_B, 2, 100))],
        )
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=1).encode())
        client.send(mar(end_to_end=2, hop_by_hop=2, destination_host=SERVER_B).encode())
        client.send(mar(end_to_end=3, hop_by_hop=3, destination_host=SERVER_B.upper()).encode())
        client.send(mar(end_to_end=4, hop_by_hop=4, destination_host=SERVER_A).encode())
        yield wait_for(lambda: len(client.application_answers()) == 4, what="4 answers")
        origin = {decode(m).end_to_end: decode(m)["Origin-Host"] for m in client.application_answers()}
        assert origin == {1: SERVER_A, 2: SERVER_B, 3: SERVER_B, 4: SERVER_A}
        assert sorted(header_of(r)[4] for r in apps[SERVER_B].requests) == [2, 3]
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_destination_host_not_connected_falls_back_to_the_realm_route():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=5, hop_by_hop=5, destination_host="hss-z.primary.example").encode())
        answer = yield client.next()
        # forwarded by realm; the server, not hss-z, answers 3002 itself (§6.1.4)
        assert answer.result_code == 3002 and answer["Origin-Host"] == SERVER_A
        assert proxy.counters.generated == {}
        assert apps[SERVER_A].calls == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_weighted_spread_over_two_servers():
    net = Net()
    try:
        proxy, apps = three_nodes(
            net, servers=((SERVER_A, None), (SERVER_B, None)),
            routes=[route(PRIMARY, (SERVER_A, 1, 300), (SERVER_B, 1, 100))],
        )
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(400)))
        yield wait_for(lambda: len(client.application_answers()) == 400, what="400 answers")
        assert (apps[SERVER_A].calls, apps[SERVER_B].calls) == (300, 100)
    finally:
        yield net.stop()


# -- answers go back where the request came from; late answers -----------------------------


@pytest_twisted.inlineCallbacks
def test_answers_go_back_to_the_connection_the_request_came_from():
    net = Net()
    try:
        proxy, apps = three_nodes(net, servers=((SERVER_A, Answering(SERVER_A, delay=0.05)),))
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        first = yield net.raw_peer(net.ports[PROXY], host=CLIENT)
        second = yield net.raw_peer(net.ports[PROXY], host=CLIENT2)
        # the same hop-by-hop ids on both connections, different End-to-End ids
        for i in range(10):
            first.send(mar(end_to_end=0x1000 + i, hop_by_hop=i, origin_host=CLIENT).encode())
            second.send(mar(end_to_end=0x2000 + i, hop_by_hop=i, origin_host=CLIENT2).encode())
        yield wait_for(lambda: len(first.application_answers()) == len(second.application_answers()) == 10,
                       what="10 answers each")
        assert sorted(header_of(m)[3:] for m in first.application_answers()) == [(i, 0x1000 + i) for i in range(10)]
        assert sorted(header_of(m)[3:] for m in second.application_answers()) == [(i, 0x2000 + i) for i in range(10)]
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_timeout_gives_3002_and_the_late_answer_is_dropped():
    net = Net()
    try:
        timers = Timers(tc=0.3, twinit=6.0, tx=0.4, dpa_timeout=0.5, cea_timeout=2.0)
        proxy, apps = three_nodes(net, proxy_timers=timers, servers=((SERVER_A, Answering(SERVER_A, delay=0.8)),))
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=0x51, hop_by_hop=0x52).encode())
        answer = yield client.next(timeout=3)  # the server answers after 0.8 s, Tx is 0.4 s
        assert answer.result_code == 3002 and answer.is_error
        assert answer["Origin-Host"] == PROXY
        assert "within Tx" in answer["Error-Message"]
        assert (answer.hop_by_hop, answer.end_to_end) == (0x52, 0x51)
        assert len(proxy.pending) == 0
        # the server's answer arrives after Tx: dropped, counted, nothing sent on
        yield wait_for(lambda: proxy.counters.late_answers == 1, what="the late answer")
        yield sleep(0.05)
        assert len(client.application_answers()) == 1
        # and the connections carry on
        apps[SERVER_A].delay = 0
        client.send(mar(end_to_end=0x61, hop_by_hop=0x62).encode())
        answer = yield client.next()
        assert answer.result_code == 2001 and answer.end_to_end == 0x61
        assert proxy.peers[SERVER_A].available and client.connected
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_answer_from_a_peer_that_was_not_asked_is_dropped():
    net = Net()
    try:
        proxy, apps = three_nodes(net, servers=((SERVER_A, Answering(SERVER_A, never=True)),))
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        other = yield net.raw_peer(net.ports[PROXY], host=CLIENT2)
        client.send(mar(end_to_end=0x71, hop_by_hop=0x72).encode())
        yield wait_for(lambda: apps[SERVER_A].calls == 1, what="the request at the server")
        forwarded = decode(apps[SERVER_A].requests[0])
        # another peer answers with the hop-by-hop id the proxy used towards the server
        forged = answer_for(forwarded, origin_host=CLIENT2, origin_realm=PARTNER, result_code=2001)
        other.send(forged.encode())
        yield wait_for(lambda: proxy.counters.late_answers == 1, what="the forged answer dropped")
        assert client.application_answers() == []
        assert len(proxy.pending) == 1
    finally:
        yield net.stop()


# -- local delivery on the proxy ---------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_request_for_our_realm_and_application_is_served_locally():
    net = Net()
    try:
        local_app = Answering(PROXY, realm=PARTNER)
        proxy, apps = three_nodes(net, proxy_app=local_app)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2, realm=PARTNER).encode())
        answer = yield client.next()
        assert answer.result_code == 2001 and answer["Origin-Host"] == PROXY
        assert local_app.calls == 1 and apps[SERVER_A].calls == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_request_addressed_to_us_without_the_application_gets_3007():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2, destination_host=PROXY).encode())
        answer = yield client.next()
        assert answer.result_code == 3007 and answer.is_error
        assert apps[SERVER_A].calls == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_local_application_failure_gives_5012():
    class Broken:
        def handle_request(self, request, peer):
            raise RuntimeError("boom")

    net = Net()
    try:
        proxy, apps = three_nodes(net, proxy_app=Broken())
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=2, realm=PARTNER).encode())
        answer = yield client.next()
        assert answer.result_code == 5012
        assert (answer.hop_by_hop, answer.end_to_end) == (2, 1)
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_the_proxys_own_error_answers_keep_proxy_info_and_the_p_bit():
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        info = [{"proxy_host": "p1.partner.example", "proxy_state": b"opaque"}]
        client.send(mar(end_to_end=1, hop_by_hop=1, realm="nowhere.example", proxy_info=info).encode())
        client.send(mar(end_to_end=2, hop_by_hop=2, route_record=[PROXY], proxy_info=info).encode())
        yield wait_for(lambda: len(client.application_answers()) == 2, what="2 answers")
        for data, code in zip(client.application_answers(), (3002, 3005), strict=True):
            message = decode(data)
            assert message.result_code == code
            assert data[4] == 0x60  # E and P, as the request was proxiable (RFC 6733 §6.2)
            proxy_info = message.find_all("Proxy-Info")
            assert [{c.name: c.value for c in avp.children} for avp in proxy_info] == [
                {"Proxy-Host": "p1.partner.example", "Proxy-State": b"opaque"}
            ]
    finally:
        yield net.stop()


def test_local_work_past_its_deadline_is_cancelled_by_one_timer():
    """gateway.routing.local.Deadlines: one timer for all, the late cancelled, the done forgotten."""
    from twisted.internet import defer, task

    from gateway.routing.local import Deadlines

    clock = task.Clock()
    deadlines = Deadlines(clock)
    late, done, later = defer.Deferred(), defer.Deferred(), defer.Deferred()
    failures = []
    late.addErrback(lambda failure: failures.append(failure.check(defer.CancelledError)))
    for deferred, at in ((late, 5.0), (done, 6.0), (later, 8.0)):
        deadlines.add(deferred, at)
    done.callback("answered")
    assert len(deadlines) == 2 and len(clock.getDelayedCalls()) == 1
    clock.advance(5.0)
    assert failures == [defer.CancelledError] and len(deadlines) == 1
    later.callback("answered")
    assert len(deadlines) == 0 and clock.getDelayedCalls() == []
