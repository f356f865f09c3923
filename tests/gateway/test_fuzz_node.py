"""The live-node mutation fuzzer (gateway.testing.fuzz) on both node paths, bounded for CI,
and one regression test per defect it found.

The fuzz run drives a real DiameterNode over loopback: mutated Cx request streams cut at
random points from a client that did its CER/CEA, mutated/duplicated/late/missing answers
from the upstream servers; after every batch the invariants of the module's docstring
(exactly one answer per request, strictly valid generated answers, pending drained, limits
held, the node alive, nothing logged at error level). bench/fuzz_node.py runs the same for
as long as you like.
"""

from __future__ import annotations

import contextlib

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import StringTransport

from cx_codec import DecodeError, decode, new_request
from gateway.node import DiameterNode, Limits, PeerSettings, Timers
from gateway.observe.counts import NodeMetrics
from gateway.peer.capabilities import LocalIdentity
from gateway.testing.diamtest import (
    APPS,
    CLIENT,
    CX,
    DWR,
    PARTNER,
    PROXY,
    SERVER_A,
    Errors,
    header_of,
    mar,
    wait_for,
)
from gateway.testing.fuzz import (
    FUZZ_PEER,
    FuzzClient,
    NodeUnderFuzz,
    base_avp_value,
    describe,
    ids_of,
    result_code_of,
    truncated_inside,
    walk_avps,
)
from gateway.transport.connection import DiameterConnection

PATHS = ["fast", "general"]  # the relay's hot loop; every read through receive_general
SEED = 6733
BATCHES = 12  # per path: ~500 requests, ~5 s on a 2-core machine


# -- the bounded fuzz run --------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.inlineCallbacks
def test_fuzzed_streams_keep_every_invariant(path):
    fuzz = NodeUnderFuzz(path, seed=SEED)
    yield fuzz.start()
    try:
        findings = yield fuzz.run(BATCHES)
    finally:
        yield fuzz.stop()
    assert fuzz.inputs >= 150, f"only {fuzz.inputs} inputs: the run is not exercising much"
    assert findings == [], f"\n{describe(findings)}\n(reproduce: python bench/fuzz_node.py --seed {SEED} --path {path})"


# -- regressions: one per defect found ------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_a_request_ending_in_a_destination_realm_header_after_the_usual_prefix():
    """The hot loop learnt the client's prefix (Session-Id, then the same AVPs up to the
    Destination-Realm); a request whose last 4 bytes are a Destination-Realm code field (RFC
    6733 §4.1: an AVP header is 8 bytes) ends the read. It crashed reading past the buffer,
    lost the requests relayed in that read from the per-peer count, and closed the client's
    connection: twenty rounds later max_pending_per_peer no longer held at all."""
    rounds, per_round, limit = 20, 20, 20
    fuzz = NodeUnderFuzz("fast", seed=1, limits=Limits(max_pending_per_peer=limit, max_pending=10_000),
                         timers=Timers(tc=0.3, twinit=6.0, tx=1.0, dpa_timeout=0.3, cea_timeout=2.0))
    yield fuzz.start()
    problems: list[str] = []
    try:
        with Errors() as errors:
            for number in range(rounds):
                client = yield fuzz.ensure_client()
                requests = []
                for _ in range(per_round):
                    hop_by_hop, end_to_end = fuzz.next_ids()
                    requests.append(mar(end_to_end, hop_by_hop).encode())
                requests[-1] = truncated_inside(requests[-1], keep=4)
                del client.messages[:]
                client.send_now(b"".join(requests))  # one write: one read, the broken one last
                wanted = {ids_of(request) for request in requests}
                with contextlib.suppress(AssertionError):  # what is missing is asserted below
                    yield wait_for(lambda client=client, wanted=wanted: not client.connected or wanted <= {
                        ids_of(a) for a in client.application_answers()}, timeout=3.0, what="the round's answers")
                answers = {}
                for answer in client.application_answers():
                    answers.setdefault(ids_of(answer), []).append(answer)
                if not client.connected:
                    problems.append(f"round {number}: the node closed the client's connection")
                valid = [ids_of(request) for request in requests[:-1]]
                relayed = [ids for ids in valid if [result_code_of(a) for a in answers.get(ids, [])] == [2001]]
                if len(relayed) != len(valid):
                    problems.append(f"round {number}: {len(relayed)} of {len(valid)} valid requests relayed and answered once")
                broken = answers.get(ids_of(requests[-1]), [])
                if len(broken) != 1:
                    problems.append(f"round {number}: {len(broken)} answers to the truncated request")
                else:
                    answer = decode(broken[0], validate=False)
                    if answer.result_code not in (5012, 5014) or answer.is_request or answer["Origin-Host"] != PROXY:
                        problems.append(f"round {number}: the truncated request answered {answer.result_code} "
                                        f"from {answer.get('Origin-Host')}")
                try:
                    yield wait_for(lambda: len(fuzz.node.pending) == 0, timeout=3.0, what="pending drained")
                except AssertionError:
                    problems.append(f"round {number}: {len(fuzz.node.pending)} requests still pending after Tx")
                counts = {peer.host: fuzz.node.pending.outstanding(peer) for peer in fuzz.node.peers.values()}
                if any(counts.values()):
                    problems.append(f"round {number}: nothing pending but per-peer counts {counts}")
            # then a flood to a server that does not answer: the limit must still hold
            client = yield fuzz.ensure_client()
            del client.messages[:]
            flood = []
            for _ in range(400):
                hop_by_hop, end_to_end = fuzz.next_ids()
                fuzz.answer_with(end_to_end, "never")
                flood.append(mar(end_to_end, hop_by_hop).encode())
            client.send_now(b"".join(flood))
            yield wait_for(lambda: len(client.application_answers()) >= 400 - limit or not client.connected,
                           timeout=3.0, what="the 3004s")
            reached = sum(1 for request in flood if fuzz.reached(ids_of(request)[1]))
            busy = sum(1 for answer in client.application_answers() if result_code_of(answer) == 3004)
            if reached > limit or busy != 400 - reached:
                problems.append(f"flood of 400 with max_pending_per_peer = {limit}: {reached} reached {SERVER_A}, "
                                f"{busy} answered 3004")
        problems += [f"logged: {event.get('log_format')} {event.get('log_failure', '')}" for event in errors.events]
    finally:
        yield fuzz.stop()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.inlineCallbacks
def test_max_pending_per_peer_holds_for_requests_naming_their_destination_host(path):
    """RFC 6733 §6.1.5: a request whose Destination-Host is a connected peer goes to it;
    limits.max_pending_per_peer still applies (the fuzzer's flood batches saw 22 of 20 held
    by one server): beyond it the node answers 3004 DIAMETER_TOO_BUSY."""
    limit = 20
    fuzz = NodeUnderFuzz(path, seed=5, limits=Limits(max_pending_per_peer=limit, max_pending=1000))
    yield fuzz.start()
    try:
        requests = []
        for _ in range(100):
            hop_by_hop, end_to_end = fuzz.next_ids()
            fuzz.answer_with(end_to_end, "never")
            requests.append(mar(end_to_end, hop_by_hop, destination_host=SERVER_A).encode())
        fuzz.client.send_now(b"".join(requests))
        # each request either reached the server or was answered at once
        yield wait_for(lambda: fuzz.held(SERVER_A) + len(fuzz.client.application_answers()) >= 100,
                       timeout=3.0, what="every request forwarded or answered")
        busy = [result_code_of(answer) for answer in fuzz.client.application_answers()]
        assert fuzz.held(SERVER_A) <= limit, f"{fuzz.held(SERVER_A)} requests pending on {SERVER_A}, limit {limit}"
        assert busy == [3004] * (100 - fuzz.held(SERVER_A))
    finally:
        yield fuzz.stop()


@pytest.mark.parametrize("path", PATHS)
def test_a_peer_trickling_one_byte_per_read_is_sent_a_dwr_and_closed_without_dwa(path):
    """RFC 3539 §3.4.1: the watchdog timer is reset by the receipt of a message, not of a
    byte. A peer that sends one byte a second of a message it never completes must get a
    DWR within Tw (Twinit + 2 s at most) and, with no DWA, be closed (SUSPECT, then DOWN)."""
    clock = task.Clock()
    twinit = 6.0  # the RFC minimum: Tw is 4 to 8 s
    node = DiameterNode(LocalIdentity(PROXY, PARTNER, applications=APPS), reactor=clock,
                        peers=[PeerSettings(CLIENT, PARTNER, connect=False)],
                        timers=Timers(tc=1.0, twinit=twinit, tx=4.0, cea_timeout=10.0), metrics=NodeMetrics())
    if path == "general":
        node.relay.stream = lambda connection, peer, data: node.receive_general(connection, data)
    connection = DiameterConnection(node, "R")
    transport = StringTransport()
    connection.makeConnection(transport)
    cer = new_request("Capabilities-Exchange-Request", hop_by_hop=1, end_to_end=1, origin_host=CLIENT,
                      origin_realm=PARTNER, host_ip_address=["127.0.0.1"], vendor_id=0, product_name="trickle",
                      auth_application_id=[CX])
    node.receive(connection, cer.encode())
    assert node.peers[CLIENT].available, node.peers[CLIENT].state
    transport.clear()
    never_completed = mar(end_to_end=2, hop_by_hop=2).encode()
    dwr_at = closed_at = None
    for tick in range(1, 4 * 40 + 1):  # 40 s in quarter seconds, a byte every second
        clock.advance(0.25)
        if transport.disconnecting:
            closed_at = closed_at or tick / 4
            break
        if tick % 4 == 0:
            node.receive(connection, never_completed[tick // 4 - 1 : tick // 4])
        if dwr_at is None and any(m[4] & 0x80 and header_of(m)[1] == DWR for m in _frames(transport.value())):
            dwr_at = tick / 4
    node.pending.stop()
    assert dwr_at is not None and dwr_at <= twinit + 2.0 + 0.25, f"DWR at {dwr_at} s (no DWR in 40 s: bytes taken for messages)"
    assert closed_at is not None and closed_at <= 3 * (twinit + 2.0) + 0.5, f"closed at {closed_at} s"


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.inlineCallbacks
def test_an_error_answer_from_a_request_the_codec_cannot_read_echoes_its_session_id(path):
    """A request whose first AVP, the Session-Id, is intact but which ends inside a
    Destination-Realm header (8 bytes, no data) is answered 5014 from the header; the answer
    must still carry the Session-Id (RFC 6733 §6.2, §8.8: the answer's grammar requires it)."""
    fuzz = NodeUnderFuzz(path, seed=2)
    yield fuzz.start()
    try:
        hop_by_hop, end_to_end = fuzz.next_ids()
        request = truncated_inside(mar(end_to_end, hop_by_hop).encode(), keep=8)
        fuzz.client.send_now(request)
        yield wait_for(lambda: fuzz.client.application_answers(), what="the answer")
        answer = fuzz.client.application_answers()[0]
        assert ids_of(answer) == (hop_by_hop, end_to_end)
        assert result_code_of(answer) == 5014
        assert base_avp_value(answer, 263) == base_avp_value(request, 263)
        decode(answer)  # strictly valid
    finally:
        yield fuzz.stop()


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.inlineCallbacks
def test_a_permanent_failure_for_an_unknown_command_has_no_e_bit(path):
    """RFC 6733 §7.1: the E bit marks protocol errors (3xxx) only. A 5014 for a command
    the dictionary has no answer grammar for (answered with the §7.2 answer-message
    layout) must not set it."""
    fuzz = NodeUnderFuzz(path, seed=3)
    yield fuzz.start()
    try:
        hop_by_hop, end_to_end = fuzz.next_ids()
        data = bytearray(mar(end_to_end, hop_by_hop).encode())
        data[5:8] = (999).to_bytes(3, "big")  # no such Cx command
        request = truncated_inside(bytes(data), keep=8)
        fuzz.client.send_now(request)
        yield wait_for(lambda: fuzz.client.application_answers(), what="the answer")
        answer = fuzz.client.application_answers()[0]
        assert ids_of(answer) == (hop_by_hop, end_to_end)
        code = result_code_of(answer)
        assert code is not None and code >= 4000, code
        assert not answer[4] & 0x20, f"E bit set on {code}"
        decode(answer)
    finally:
        yield fuzz.stop()


@pytest_twisted.inlineCallbacks
def test_the_cea_refusing_a_malformed_cer_is_itself_valid():
    """RFC 6733 §5.3.2: a CEA carries Host-IP-Address, Vendor-Id and Product-Name whatever
    its Result-Code; the 5014 refusing a CER with a broken AVP must too."""
    fuzz = NodeUnderFuzz("fast", seed=4)
    yield fuzz.start()
    try:
        peer = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", fuzz.net.ports[PROXY]), FuzzClient())
        fuzz.net.raw.append(peer)
        peer.host, peer.realm = FUZZ_PEER, PARTNER
        cer = bytearray(new_request(
            "Capabilities-Exchange-Request", hop_by_hop=7, end_to_end=8, origin_host=FUZZ_PEER, origin_realm=PARTNER,
            host_ip_address=["127.0.0.1"], vendor_id=0, product_name="fuzz", auth_application_id=[CX],
        ).encode())
        last = walk_avps(bytes(cer))[0][-1][0]
        cer[last + 5 : last + 8] = (0xFFFFFF).to_bytes(3, "big")  # the last AVP overruns the message (§4.1)
        peer.send_now(bytes(cer))
        yield wait_for(lambda: peer.messages or not peer.connected, what="the CEA")
        assert peer.messages, "no CEA"
        cea = peer.messages[0]
        assert ids_of(cea) == (7, 8) and result_code_of(cea) == 5014
        try:
            decode(cea)
        except DecodeError as error:
            raise AssertionError(f"the CEA is not valid: {error}") from None
        yield peer.wait_closed()
    finally:
        yield fuzz.stop()


def _frames(data: bytes) -> list[bytes]:
    messages, offset = [], 0
    while offset + 4 <= len(data):
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        if length < 20:
            break
        messages.append(data[offset : offset + length])
        offset += length
    return messages

