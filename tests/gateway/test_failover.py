"""Failover over loopback (RFC 6733 §5.5.4): requests pending on a peer that goes down are
re-sent to an alternate with the T flag; with none left, or when Tx runs out, the node
answers 3002 itself. Every request gets exactly one answer."""

from __future__ import annotations

from collections import Counter

import pytest_twisted
from twisted.internet import defer

from cx_codec import decode
from gateway.settings import Limits, PeerSettings, Timers
from gateway.testing.diamtest import (  # the loopback harness the multi-node tests share
    CLIENT,
    PARTNER,
    PRIMARY,
    PROXY,
    SERVER_A,
    SERVER_B,
    Answering,
    Errors,
    Net,
    all_open,
    header_of,
    mar,
    route,
    sleep,
    wait_for,
)

FLAG_T = 0x10




def kill(node):
    """Drop every connection of ``node`` at once, no DPR (a crash, a cable pulled)."""
    for connection in list(node.connections):
        connection.transport.abortConnection()


def by_end_to_end(raw):
    """End-to-End id -> list of (Result-Code, Origin-Host, E bit) of the answers received."""
    answers = {}
    for data in raw.application_answers():
        message = decode(data, validate=False)
        answers.setdefault(message.end_to_end, []).append(
            (message.result_code, message["Origin-Host"], message.is_error)
        )
    return answers


def slow_servers(net, delay, hosts=(SERVER_A, SERVER_B)):
    nodes, apps = {}, {}
    for host in hosts:
        apps[host] = Answering(host, delay=delay)
        nodes[host] = net.node(host, PRIMARY, peers=[PeerSettings(PROXY, PARTNER, connect=False),
                                                     PeerSettings(CLIENT, PARTNER, connect=False)], app=apps[host])
    return nodes, apps


def failover_proxy(net, hosts, tx=3.0, limits=None):
    timers = Timers(tc=0.3, twinit=6.0, tx=tx, dpa_timeout=0.3, cea_timeout=2.0)
    peers = [PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host in hosts]
    peers.append(PeerSettings(CLIENT, PARTNER, connect=False))
    return net.node(PROXY, PARTNER, peers=peers, routes=[route(PRIMARY, *hosts)], timers=timers, limits=limits)


def end_to_ends(requests, t_flag=None):
    return {header_of(r)[4] for r in requests if t_flag is None or bool(r[4] & FLAG_T) is t_flag}


# -- failover to an alternate -----------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_pending_requests_fail_over_to_the_alternate_with_the_t_flag():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.4)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B])
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        with Errors() as errors:
            client.send(b"".join(mar(end_to_end=i, hop_by_hop=0x1000 + i).encode() for i in range(200)))
            yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 200, what="200 requests at the servers")
            assert apps[SERVER_A].calls == apps[SERVER_B].calls == 100
            assert len(proxy.pending) == 200
            kill(nodes[SERVER_A])
            yield wait_for(lambda: len(client.application_answers()) >= 200, timeout=5, what="200 answers")
            yield sleep(0.6)  # anything more would be a second answer
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(200))
        assert Counter(len(got) for got in answers.values()) == {1: 200}
        assert {got[0][0] for got in answers.values()} == {2001}
        # what was pending on A was answered by B, having been re-sent with the T flag
        sent_to_a = end_to_ends(apps[SERVER_A].requests)
        assert len(sent_to_a) == 100
        assert {answers[e2e][0][1] for e2e in sent_to_a} == {SERVER_B}
        assert end_to_ends(apps[SERVER_B].requests, t_flag=True) == sent_to_a
        assert end_to_ends(apps[SERVER_B].requests, t_flag=False) == set(range(200)) - sent_to_a
        assert apps[SERVER_B].calls == 200
        # the client sees its own hop-by-hop ids, and no T flag it did not send
        for data in client.application_answers():
            assert header_of(data)[3] == 0x1000 + header_of(data)[4]
        assert len(proxy.pending) == 0
        assert proxy.counters.late_answers == 0
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_one_of_two_upstreams_killed_mid_load_no_request_lost_or_answered_twice():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.1)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B])
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        total = 600
        with Errors() as errors:
            for start in range(0, total, 20):
                client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(start, start + 20)))
                if start == 200:
                    kill(nodes[SERVER_A])
                yield sleep(0.005)
            yield wait_for(lambda: len(client.application_answers()) >= total, timeout=8, what=f"{total} answers")
            yield sleep(0.4)
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(total))
        assert Counter(len(got) for got in answers.values()) == {1: total}
        results = Counter(got[0][0] for got in answers.values())
        assert set(results) <= {2001, 3002}
        assert results[2001] >= total - 20  # at most a handful raced the close
        # every request sent to A and not answered by A was answered by B after a T-flagged re-send
        answered_by_a = {e2e for e2e, got in answers.items() if got[0][1] == SERVER_A}
        moved = end_to_ends(apps[SERVER_A].requests) - answered_by_a
        assert moved, "the kill came too late to leave anything pending on A"
        assert moved <= end_to_ends(apps[SERVER_B].requests, t_flag=True) | {
            e2e for e2e, got in answers.items() if got[0][0] == 3002
        }
        # after the kill A is not used again: it reconnects but must prove itself (RFC 3539 REOPEN)
        assert not proxy.peers[SERVER_A].available
        assert len(proxy.pending) == 0
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_no_alternate_left_gives_3002_at_once():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=1.0, hosts=(SERVER_A,))
        proxy = failover_proxy(net, [SERVER_A], tx=60.0)  # answers within the wait below cannot be Tx
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(50)))
        yield wait_for(lambda: apps[SERVER_A].calls == 50, what="50 requests at the server")
        kill(nodes[SERVER_A])
        yield wait_for(lambda: len(client.application_answers()) == 50, timeout=5, what="50 answers")
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(50))
        assert {tuple(got) for got in answers.values()} == {((3002, PROXY, True),)}
        message = decode(client.application_answers()[0])
        assert "went down" in message["Error-Message"]
        assert len(proxy.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_alternate_at_its_limit_gives_3002_for_what_it_cannot_take():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.5)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B], limits=Limits(max_pending_per_peer=15, max_pending=1000))
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(20)))
        yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 20, what="20 at the servers")
        kill(nodes[SERVER_A])  # 10 pending on A, 10 on B; B takes 5 more
        yield wait_for(lambda: len(client.application_answers()) == 20, what="20 answers")
        results = Counter(got[0][0] for got in by_end_to_end(client).values())
        assert results == {2001: 15, 3002: 5}
        assert len(end_to_ends(apps[SERVER_B].requests, t_flag=True)) == 5
    finally:
        yield net.stop()


# -- Tx ------------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_request_that_times_out_gets_3002_after_tx():
    net = Net()
    try:
        silent = Answering(SERVER_A, never=True)
        net.node(SERVER_A, PRIMARY, peers=[PeerSettings(CLIENT, PARTNER, connect=False)], app=silent)
        timers = Timers(tc=0.3, twinit=6.0, tx=0.6, dpa_timeout=0.3, cea_timeout=2.0)
        client = net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", net.ports[SERVER_A])],
                          routes=[route(PRIMARY, SERVER_A)], timers=timers, listen=False)
        yield wait_for(all_open(client, SERVER_A), what="open")
        # the server never answers: only Tx (0.6 s) can produce these answers
        answers = yield defer.gatherResults([client.send_request(mar(end_to_end=i, hop_by_hop=0x40 + i)) for i in range(5)])
        assert silent.calls == 5
        for i, data in enumerate(answers):
            message = decode(data)
            assert (message.result_code, message.is_error, message["Origin-Host"]) == (3002, True, CLIENT)
            assert (message.hop_by_hop, message.end_to_end) == (0x40 + i, i)
            assert "within Tx" in message["Error-Message"]
        assert len(client.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_node_originated_requests_fail_over_and_each_deferred_fires_once():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.3)
        timers = Timers(tc=0.3, twinit=6.0, tx=3.0, dpa_timeout=0.3, cea_timeout=2.0)
        client = net.node(
            CLIENT, PARTNER, listen=False, timers=timers, routes=[route(PRIMARY, SERVER_A, SERVER_B)],
            peers=[PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host in (SERVER_A, SERVER_B)],
        )
        yield wait_for(all_open(client, SERVER_A, SERVER_B), what="open")
        with Errors() as errors:
            results = [client.send_request(mar(end_to_end=i, hop_by_hop=i)) for i in range(100)]
            yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 100, what="100 at the servers")
            kill(nodes[SERVER_A])
            answers = yield defer.gatherResults(results)
            yield sleep(0.4)
        messages = [decode(a) for a in answers]
        assert [m.end_to_end for m in messages] == list(range(100))
        assert {m.result_code for m in messages} == {2001}
        assert {m["Origin-Host"] for m in messages} == {SERVER_B}
        assert end_to_ends(apps[SERVER_B].requests, t_flag=True) == end_to_ends(apps[SERVER_A].requests)
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_failover_with_the_pending_table_full_still_moves_requests():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.5)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B], limits=Limits(max_pending_per_peer=100, max_pending=20))
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(20)))
        yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 20, what="20 at the servers")
        assert len(proxy.pending) == 20
        kill(nodes[SERVER_A])  # moving 10 requests from A to B adds nothing to the table
        yield wait_for(lambda: len(client.application_answers()) == 20, what="20 answers")
        results = Counter(got[0][0] for got in by_end_to_end(client).values())
        assert results == {2001: 20}
        assert len(end_to_ends(apps[SERVER_B].requests, t_flag=True)) == 10
    finally:
        yield net.stop()
