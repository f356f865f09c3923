"""Memory stays bounded under a flood from a peer that does not read its answers.

The node stops reading from a connection whose outgoing buffer is full (Twisted's
producer/consumer), so the flood waits in the client's socket instead of our memory,
and every request is still answered once the client reads again.
"""

from __future__ import annotations

import socket
import struct

import pytest_twisted
from twisted.internet import protocol, reactor, task

from cx_codec import answer_for, decode, samples
from cx_codec.commands import CapabilitiesExchangeRequest
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.settings import PeerSettings, Timers

CX = (Application(16777216, 10415),)
FLOOD = 20000


class Answering:
    def handle_message(self, request, peer):
        return answer_for(request, origin_host="hss.partner.example", origin_realm="partner.example", result_code=2001)


class SlowReader(protocol.Protocol):
    """CER, then a flood of MARs, reading nothing until told to."""

    def connectionMade(self):
        self.buffer = b""
        self.answers = 0
        self.open = False
        self.transport.write(CapabilitiesExchangeRequest(
            hop_by_hop=1, end_to_end=1, origin_host="flood.partner.example", origin_realm="partner.example",
            host_ip_address="127.0.0.1", vendor_id=0, product_name="flood",
            vendor_specific_application_id=[{"vendor_id": 10415, "auth_application_id": 16777216}],
        ).encode())

    def dataReceived(self, data):
        self.buffer += data
        while len(self.buffer) >= 20:
            length = int.from_bytes(self.buffer[1:4], "big")
            if len(self.buffer) < length:
                break
            message, self.buffer = self.buffer[:length], self.buffer[length:]
            if int.from_bytes(message[5:8], "big") == 257:
                self.open = True
            else:
                self.answers += 1

    def flood(self):
        template = bytearray(samples.SAMPLE_MAR)
        chunks = []
        for number in range(FLOOD):
            struct.pack_into(">II", template, 12, number, number)
            chunks.append(bytes(template))
        self.transport.pauseProducing()  # read nothing from now on
        self.transport.write(b"".join(chunks))


def buffered(transport) -> int:
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


async def until(condition, what, timeout=20.0):
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_peer_that_does_not_read_cannot_make_the_node_buffer_without_bound():
    node = DiameterNode(
        LocalIdentity("hss.partner.example", "partner.example", applications=CX), reactor=reactor,
        peers=[PeerSettings("flood.partner.example", "partner.example", connect=False)], timers=Timers(twinit=6),
    )
    node.applications[16777216] = Answering()
    port = node.listen(0)
    client = await protocol.ClientCreator(reactor, SlowReader).connectTCP("127.0.0.1", port.getHost().port)
    try:
        await until(lambda: client.open, "the CEA")
        server_side = next(iter(node.connections))
        # small kernel buffers, or loopback's autotuned megabytes absorb the whole flood
        server_side.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        client.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.flood()
        largest = 0
        # while the client reads nothing: the node pauses that connection, its buffer stays small
        for _ in range(100):
            await task.deferLater(reactor, 0.01, lambda: None)
            largest = max(largest, buffered(server_side.transport))
        assert server_side.transport.producerPaused or server_side.peer.congested
        assert largest < 2 * server_side.transport.bufferSize + len(samples.SAMPLE_MAR) * 64, largest
        # the client reads again: every request is answered, exactly once
        client.transport.resumeProducing()
        await until(lambda: client.answers >= FLOOD, f"{FLOOD} answers (got {client.answers})")
        await task.deferLater(reactor, 0.05, lambda: None)
        assert client.answers == FLOOD
        assert decode(samples.SAMPLE_MAR)  # the flood was made of valid MARs
    finally:
        client.transport.loseConnection()
        await node.stop()
