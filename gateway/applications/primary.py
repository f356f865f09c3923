"""The `primary` role: what partner gateways reach across the interconnect
(TR 23.781 solution 2, steps 18-20).

Each partner peer is a ``partner_id`` of hss_store's agreements (its Diameter identity,
checked against its TLS certificate at the capabilities exchange where TLS is used). A MAR
is accepted only for outbound identities bound to *that* partner, or for real identities
where that partner's agreement allows them; the identities become the real ones, the HSS
answers (in-process when the `hss` role runs here too, else by route), and the answer goes
back with the identities the partner sent. Everything else gets the same 5001, which tells
an unknown user from a user of another partner in nothing (the log says which).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from cx_codec import Message, decode
from cx_codec.errors import ResultCode
from gateway.applications.caches import AgreementCache, OutboundBindingCache
from gateway.applications.cx import (
    Command,
    CxResult,
    Local,
    auth_request,
    experimental_answer,
    is_digest,
)
from gateway.applications.hss import failure_answer, invalid_answer, store_failure_answer
from gateway.applications.storage import StoreAccess
from gateway.applications.translation import (
    Destination,
    Identities,
    InvalidAnswer,
    Restore,
    translate_answer,
    translate_request,
)
from hss_store.errors import IdentitiesDontMatch, UnknownIdentity, UnknownSubscriber

log = Logger(namespace="cxgw.primary")

Send = Callable[[bytes], Deferred[bytes]]
NOT_SERVED = "user unknown"  # the one reason every refused user gets, whatever the cause


class LocalHss:
    """What the primary role needs of an in-process HSS (gateway.applications.hss)."""

    def handle_message(self, message: Message, peer: Any) -> Deferred[bytes]: ...


class PrimaryApplication:
    def __init__(
        self,
        store: StoreAccess,
        local: Local,
        partners: Mapping[str, str],
        *,
        hss: LocalHss | None = None,
        send: Send | None = None,
        hss_destination: Destination | None = None,
        hide_topology: bool = True,
    ) -> None:
        if hss is None and (send is None or hss_destination is None):
            raise ValueError("the primary role needs the hss role in this process or a route to the HSS")
        self.store = store
        self.local = local
        self.partners = {host.lower(): partner_id for host, partner_id in partners.items()}
        self.hss = hss
        self.send = send
        self.hss_destination = hss_destination
        self.hide_topology = hide_topology
        self.outcomes: dict[str, int] = {}
        # outbound bindings and agreements held in memory once PrimaryWatch reads the change logs
        self.bindings = OutboundBindingCache(store.store)
        self.agreements = AgreementCache(store.store)

    def serves(self, peer: Any) -> bool:
        return peer is not None and peer.host.lower() in self.partners

    def handle_message(self, message: Message, peer: Any) -> Deferred[bytes]:
        partner_id = self.partners.get(peer.host.lower()) if peer is not None else None
        if message.command_code != Command.MAR or partner_id is None:
            # the interconnect carries the authentication exchange only (TR 23.781 step 18)
            return succeed(failure_answer(message, self.local, ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
                                          "only Multimedia-Auth-Request is served to partners"))
        request = auth_request(message)
        if is_digest(request.scheme):
            self._count("5006")
            return succeed(experimental_answer(message, self.local, CxResult.ERROR_AUTH_SCHEME_NOT_SUPPORTED,
                                               f"scheme {request.scheme} cannot be used by a migrated user"))
        result = self.store.call(self._real_identities, partner_id, request.impi, request.impu)
        result.addCallback(self._ask_hss, message, Identities(request.impi, request.impu), peer)
        return result.addErrback(self._refused, message, partner_id)

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def _real_identities(self, partner_id: str, impi: str, impu: str) -> Identities:
        """Step 19's precondition: the real user behind what the partner sent."""
        binding = self.bindings.active(impi)
        if binding is not None:
            if binding.partner_id != partner_id:
                raise UnknownIdentity(f"outbound identity {impi!r} is bound for partner {binding.partner_id!r}, "
                                      f"not {partner_id!r}")
            if binding.outbound_impu != impu:
                raise IdentitiesDontMatch(f"public identity {impu!r} is not bound with outbound identity {impi!r}")
            if not self.agreements.may_migrate(partner_id, binding.real_impi):  # the agreement ended since
                raise UnknownIdentity(f"outbound identity {impi!r} is bound for partner {partner_id!r}, whose "
                                      f"agreement no longer covers {binding.real_impi!r}")
            return Identities(binding.real_impi, binding.real_impu)
        if not self.agreements.may_migrate(partner_id, impi):
            raise UnknownIdentity(f"no agreement lets partner {partner_id!r} use the real identity {impi!r}")
        self.store.store.check_impu(impi, impu)  # UnknownSubscriber, IdentitiesDontMatch
        return Identities(impi, impu)

    def _ask_hss(self, real: Identities, message: Message, sent: Identities, peer: Any) -> Deferred[bytes]:
        data = message.encode()
        restore = Restore(sent, None)
        if self.hss is not None:
            inner = translate_request(data, real, None, self.local, hide_topology=False)
            answer = maybeDeferred(self.hss.handle_message, decode(inner), peer)
        else:
            inner = translate_request(data, real, self.hss_destination, self.local, hide_topology=False)
            answer = self.send(inner)  # type: ignore[misc]
        return answer.addCallback(self._translated_back, restore, message)

    def _translated_back(self, answer: bytes, restore: Restore, message: Message) -> bytes:
        try:
            translated = translate_answer(answer, restore, self.local, hide_topology=self.hide_topology)
        except InvalidAnswer as error:  # a routed HSS's answer that fails strict decoding: 5012
            self._count("invalid answer")
            return invalid_answer(message, self.local, error, "the HSS")
        self._count("answered")
        return translated

    def _refused(self, failure: Any, message: Message, partner_id: str) -> bytes:
        error = failure.value
        if isinstance(error, UnknownIdentity | UnknownSubscriber) and not isinstance(error, IdentitiesDontMatch):
            # the true reason stays here; the partner learns only "unknown" (TS 29.229 5001)
            log.info("partner {partner}: MAR refused: {error}", partner=partner_id, error=error)
            self._count("5001")
            return experimental_answer(message, self.local, CxResult.ERROR_USER_UNKNOWN, NOT_SERVED)
        self._count(str(getattr(error, "experimental_result", None) or "error"))
        return store_failure_answer(message, self.local, failure)
