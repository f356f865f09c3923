"""The node's one Cx application: each request goes to the role that serves the peer it
came from. A partner gateway's requests go to the `primary` role; any other peer's (the
partner's S-CSCFs, or a plain IMS core's) to the `partner` role, else to the `hss` role.
The `partner` role serves no peer that its node forwards to: the primary gateway across
the interconnect sends it no Cx request in TR 23.781 solution 2, and one that did could
learn inbound identities and S-CSCF names, or register a user to itself (docs/architecture.md,
"Who serves a request").
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed

from cx_codec import Message
from cx_codec.errors import ResultCode
from gateway.applications.cx import Local
from gateway.applications.fastpath import PartnerFastPath
from gateway.applications.hss import HssApplication, failure_answer
from gateway.applications.hss_batch import HssBatch
from gateway.applications.partner import PartnerApplication
from gateway.applications.primary import PrimaryApplication
from gateway.routing.relay import FastRequest


class CxService:
    def __init__(
        self,
        local: Local,
        node: Any,
        *,
        hss: HssApplication | None = None,
        partner: PartnerApplication | None = None,
        primary: PrimaryApplication | None = None,
    ) -> None:
        self.local = local
        self.hss, self.partner, self.primary = hss, partner, primary
        self.others = partner or hss  # the role of every peer that is not a partner gateway
        self._node = node  # its routing table names the next hops (None: a service outside a node, no routes)
        self._built_for: Any = None  # the node the fast paths below were made for
        self._others_fast: FastRequest | None = None
        self._primary_fast: FastRequest | None = None

    def fast_path(self, node: Any) -> FastRequest | None:
        """The requests of the relay's read loop this service answers there
        (gateway.routing.relay calls this for each read that has requests for it)."""
        if self._built_for is not node:
            self._node = self._built_for = node
            batch = HssBatch(self.hss, node, self.primary) if self.hss is not None else None
            if self.partner is not None:
                self._others_fast = PartnerFastPath(self.partner, node)
            else:
                self._others_fast = batch.hss_request if batch is not None else None
            self._primary_fast = batch.primary_request if batch is not None and self.primary is not None else None
        if self.primary is None and self._others_fast is not None:
            return self._others_fast  # what fast_request would call, without its layer per message
        return self.fast_request

    def claims(self, peer: Any) -> bool:
        """Whether this node's Cx roles serve every Cx request of ``peer``, whatever realm or
        host it names (``Proxy._route`` and the relay's ``decide`` ask before routing): the
        interconnect carries translated requests only (TR 23.781 solution 2, steps 18-20).
        A partner gateway's requests are the `primary` role's, never relayed into the core
        (where they would pass untranslated, past the agreements, e.g. by naming the HSS's
        Destination-Host); with the `partner` role every other peer's are the partner role's,
        never relayed across the interconnect (with the inbound identities and the S-CSCF's
        host name in them: docs/architecture.md, "Who serves a request")."""
        if self.primary is not None and self.primary.serves(peer):
            return True
        return self.partner is not None

    def forwards_to(self, peer: Any) -> bool:
        """Whether this node forwards requests to ``peer`` (a target of one of its routes)."""
        node = self._node
        return node is not None and peer is not None and node.routing.forwards_to(peer.host)

    def fast_request(self, connection: Any, peer: Any, data: bytes, offset: int, stop: int) -> bool:
        """gateway.routing.relay.FastRequest: the usual MAR, routed like handle_message."""
        if self.primary is not None and self.primary.serves(peer):
            serve = self._primary_fast
        else:
            serve = self._others_fast
        return serve is not None and serve(connection, peer, data, offset, stop)

    def handle_message(self, message: Message, peer: Any) -> Deferred[bytes]:
        if self.primary is not None and self.primary.serves(peer):
            return self.primary.handle_message(message, peer)
        if self.partner is not None and self.forwards_to(peer):
            self.partner.count("from a next hop")
            return succeed(failure_answer(
                message, self.local, ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
                f"peer {peer.host} is a next hop of this partner gateway; the partner role serves the requests "
                "of its own S-CSCFs only",
            ))
        if self.others is None:
            return succeed(failure_answer(
                message, self.local, ResultCode.DIAMETER_APPLICATION_UNSUPPORTED,
                f"peer {getattr(peer, 'host', '?')} is not a partner gateway of this primary role",
            ))
        return self.others.handle_message(message, peer)

    def outcomes(self) -> dict[tuple[str, str], int]:
        """Translation outcomes by (role, result), for metrics."""
        found: dict[tuple[str, str], int] = {}
        for role, application in (("partner", self.partner), ("primary", self.primary)):
            if application is not None:
                for result, count in application.outcomes.items():
                    found[role, result] = count
        return found
