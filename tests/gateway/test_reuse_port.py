"""``[[listen]] reuse_port = true``: several nodes (processes, in production) listen on one
port with SO_REUSEPORT and the kernel spreads new connections between them."""

from __future__ import annotations

import pytest_twisted

from gateway.testing.diamtest import PARTNER, PRIMARY, SERVER_A, SERVER_B, Net, sleep


@pytest_twisted.inlineCallbacks
def test_two_nodes_listen_on_one_port_and_both_accept():
    net = Net()
    try:
        first = net.node(SERVER_A, PRIMARY, listen=False, accept_realms=(PARTNER,))
        second = net.node(SERVER_B, PRIMARY, listen=False, accept_realms=(PARTNER,))
        port = first.listen(0, reuse_port=True).getHost().port
        assert second.listen(port, reuse_port=True).getHost().port == port
        peers = []
        for _ in range(24):  # the kernel hashes each connection to one listener
            peers.append((yield net.raw_peer(port, host=None)))
        yield sleep(0.1)
        assert first.connections and second.connections
        assert len(first.connections) + len(second.connections) == 24
        # and each one serves: a CER on every connection is answered 2001
        for i, peer in enumerate(peers):
            cea = yield peer.exchange_cer(f"c{i}.{PARTNER}", PARTNER)
            assert cea.result_code == 2001, cea
    finally:
        yield net.stop()
