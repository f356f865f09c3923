"""The election between two connections to the same peer, RFC 6733 §5.6.4.

When both nodes connect to each other at the same time, each ends up with an initiator
connection (I) and a responder connection (R). The responder side holds the election: it
compares its own Origin-Host with the Origin-Host received in the CER "as two streams of
octets", with ASCII letters compared case-insensitively (DiameterIdentity is a DNS name).
If the local Origin-Host lexicographically succeeds the peer's, the local node wins and
closes the connection it initiated; the results on the two nodes are always inverse.
"""

from __future__ import annotations


def identity_octets(host: str | bytes) -> bytes:
    """The DiameterIdentity as the octets the election compares (ASCII case folded)."""
    octets = host.encode("utf-8") if isinstance(host, str) else bytes(host)
    # RFC 6733 §5.6.4: 'a'..'z' compare equal to 'A'..'Z'; bytes.lower() folds ASCII only.
    return octets.lower()


def wins_election(local_host: str | bytes, peer_host: str | bytes) -> bool:
    """True if this node wins: its Origin-Host succeeds the peer's (RFC 6733 §5.6.4).

    Equal identities never win (a peer with our own Origin-Host is a misconfiguration that
    :class:`~gateway.peer.state.PeerStateMachine` refuses up front).
    """
    return identity_octets(local_host) > identity_octets(peer_host)
