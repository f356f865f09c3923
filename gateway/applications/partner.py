"""The `partner` role: the HSS of migrated users, as the partner's S-CSCFs see it
(TR 23.781 solution 2, steps 16-21).

- MAR with inbound identities: the binding (``hss_store`` inbound binding) gives the
  primary-side identities and the primary SIP database (NOTE 6: the primary-side IMPI
  determines it); the request goes there translated (gateway.applications.translation),
  its answer comes back with the inbound identities and the SIP-Auth-Data-Items untouched.
- Answered here, never forwarded: no binding, or an expired or revoked one: 5001; an IMPU
  not bound with that IMPI: 5002; a Digest-family scheme: 5006 (HA1 binds the user name and
  cannot survive translation). Re-synchronisation (SIP-Authorization = RAND || AUTS) passes
  through: it depends on K and SQN only.
- SAR, UAR and LIR of migrated users are answered from the binding (step 25): the S-CSCF
  that registered the user is recorded from its SAR, for a later revocation.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from cx_codec import Message
from cx_codec.errors import ResultCode
from gateway.applications.caches import InboundBindingCache
from gateway.applications.cx import (
    Command,
    CxResult,
    Local,
    auth_request,
    experimental_answer,
    identities,
    is_digest,
    location_info_answer,
    server_assignment_answer,
    user_authorization_answer,
)
from gateway.applications.hss import failure_answer, invalid_answer, store_failure_answer
from gateway.applications.storage import StoreAccess
from gateway.applications.translation import (
    Destination,
    Identities,
    InvalidAnswer,
    Restore,
    restore_of,
    translate_answer,
    translate_request,
)
from hss_store.errors import IdentitiesDontMatch, UnknownBinding
from hss_store.records import CLEARS_SERVER_NAME, STORES_SERVER_NAME, InboundBinding

log = Logger(namespace="cxgw.partner")

Send = Callable[[bytes], Deferred[bytes]]  # DiameterNode.send_request: an answer, never an errback


def _end_to_end_ids() -> Callable[[], int]:
    """RFC 6733 §3: high 12 bits from the clock, low 20 bits a counter started at random."""
    counter = itertools.count(((int(time.time()) & 0xFFF) << 20) | random.getrandbits(20))
    return lambda: next(counter) & 0xFFFFFFFF


class PartnerApplication:
    def __init__(
        self, store: StoreAccess, local: Local, send: Send, *, hide_topology: bool = True,
        new_end_to_end: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.local = local
        self.send = send
        self.hide_topology = hide_topology
        # this node's End-to-End ids (RFC 6733 §3), for the requests it sends on under its name
        self.new_end_to_end = new_end_to_end or _end_to_end_ids()
        self.annotate: Callable[[tuple[bytes, bytes], str], None] | None = None  # a recording node's (captures.recorder)
        self.outcomes: dict[str, int] = {}  # translation outcomes, by result (metrics)
        # active inbound bindings held in memory while the revocation watch keeps them current
        self.bindings = InboundBindingCache(store.store)
        # inbound IMPI -> (Origin-Host, Origin-Realm) of the S-CSCF that registered it (its
        # SAR), where a revocation sends the RTR (gateway.applications.revocation)
        self.registrars: dict[str, tuple[str, str]] = {}
        self._handlers: dict[int, Callable[[Message], Deferred[bytes]]] = {
            Command.MAR: self.multimedia_auth,
            Command.SAR: self.server_assignment,
            Command.UAR: self.user_authorization,
            Command.LIR: self.location_info,
        }

    def handle_message(self, message: Message, peer: Any) -> Deferred[bytes]:
        handler = self._handlers.get(message.command_code)
        if handler is None:
            return succeed(failure_answer(message, self.local, ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
                                          f"command {message.command_code} is not served for migrated users"))
        return handler(message)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    # -- steps 16-21 ---------------------------------------------------------------------
    def multimedia_auth(self, message: Message) -> Deferred[bytes]:
        request = auth_request(message)
        if is_digest(request.scheme):
            self.count("5006")
            return succeed(experimental_answer(
                message, self.local, CxResult.ERROR_AUTH_SCHEME_NOT_SUPPORTED,
                f"scheme {request.scheme} binds the user name and cannot be used by a migrated user; use IMS-AKA",
            ))
        result = self.store.call(self._binding, request.impi, request.impu)
        result.addCallback(self._forward, message, Identities(request.impi, request.impu))
        return result.addErrback(self._refused, message)

    def _binding(self, impi: str, impu: str | None) -> InboundBinding:
        """The active binding of an inbound IMPI whose IMPU is ``impu`` (step 17)."""
        binding = self.store.store.inbound_by_impi(impi)
        self.bindings.keep(binding)
        if impu is not None and binding.inbound_impu != impu:
            raise IdentitiesDontMatch(
                f"public identity {impu!r} is not bound with inbound identity {impi!r}"
            )
        return binding

    def _forward(self, binding: InboundBinding, message: Message, inbound: Identities) -> Deferred[bytes]:
        translated, restore = self.translate(message.encode(), binding, inbound)  # the bytes as received
        answer = self.send(translated)  # step 18; the node answers 3002/3004 itself on failure
        answer.addCallback(self._translated_back, restore, message)
        return answer

    def translate(self, data: bytes, binding: InboundBinding, inbound: Identities) -> tuple[bytes, Restore]:
        """The MAR ``data`` for the primary SIP database of ``binding`` (step 18), and what
        its answer must get back; the general path and the fast path
        (gateway.applications.fastpath) both send what this makes."""
        primary = Identities(binding.primary_impi, binding.primary_impu)
        hide = self.hide_topology
        translated = translate_request(
            data, primary, Destination(binding.primary.realm, binding.primary.host), self.local,
            hide_topology=hide, end_to_end=self.new_end_to_end() if hide else None,
        )
        restore = restore_of(data, inbound, hide)
        if self.annotate is not None:  # both legs' requests name the binding in the capture (docs/captures.md)
            self.annotate((data, translated), f"translated: inbound {inbound.impi} ↔ primary {primary.impi} ({binding.primary.realm})")
        return translated, restore

    def _translated_back(self, answer: bytes, restore: Any, message: Message) -> bytes:
        try:
            translated = translate_answer(answer, restore, self.local, hide_topology=self.hide_topology)  # step 20
        except InvalidAnswer as error:
            return self.invalid_answer(message, error)
        self.count("forwarded")
        return translated

    def invalid_answer(self, message: Message, error: InvalidAnswer) -> bytes:
        """The S-CSCF's answer when the primary side's MAA fails strict decoding: 5012 with
        the inbound identities (both paths; the interconnect may be hostile)."""
        self.count("invalid answer")
        return invalid_answer(message, self.local, error, "the primary SIP database")

    def _refused(self, failure: Any, message: Message) -> bytes:
        code = getattr(failure.value, "experimental_result", None)
        self.count(str(code) if code else "error")
        return store_failure_answer(message, self.local, failure)

    # -- step 25: the S-CSCF completes the registration with the partner's HSS ---------------
    def server_assignment(self, message: Message) -> Deferred[bytes]:
        impi, impus = identities(message)
        assignment = int(message["Server-Assignment-Type"])  # type: ignore[call-overload]
        server_name = str(message.get("Server-Name") or "") or None

        registrar = (str(message["Origin-Host"]), str(message["Origin-Realm"]))

        def assign() -> InboundBinding:
            binding = self._lookup(impi, impus)
            if assignment in STORES_SERVER_NAME:
                self.store.store.set_inbound_registration(binding.inbound_impi, server_name)
                self.registrars[binding.inbound_impi] = registrar
            elif assignment in CLEARS_SERVER_NAME:
                self.store.store.set_inbound_registration(binding.inbound_impi, None)
                self.registrars.pop(binding.inbound_impi, None)
            return binding

        result = self.store.call(assign)
        result.addCallback(lambda binding: server_assignment_answer(
            message, self.local, binding.inbound_impi, [binding.inbound_impu], assignment in STORES_SERVER_NAME,
        ))
        return result.addErrback(self._refused, message)

    def user_authorization(self, message: Message) -> Deferred[bytes]:
        impi, impus = identities(message)

        def registered() -> str | None:
            binding = self._lookup(impi, impus)
            return self.store.store.inbound_registration(binding.inbound_impi)

        result = self.store.call(registered)
        result.addCallback(lambda name: user_authorization_answer(
            message, self.local, CxResult.SUBSEQUENT_REGISTRATION if name else CxResult.FIRST_REGISTRATION, name,
        ))
        return result.addErrback(self._refused, message)

    def location_info(self, message: Message) -> Deferred[bytes]:
        impu = str(message["Public-Identity"])

        def serving() -> str | None:
            binding = self.store.store.inbound_by_impu(impu)
            return self.store.store.inbound_registration(binding.inbound_impi)

        result = self.store.call(serving)
        result.addCallback(lambda name: location_info_answer(message, self.local, name))
        return result.addErrback(self._refused, message)

    def _lookup(self, impi: str | None, impus: list[str]) -> InboundBinding:
        """The binding of a request naming a migrated user by IMPI and/or IMPU."""
        if impi is not None:
            return self._binding(impi, impus[0] if impus else None)
        if impus:
            return self.store.store.inbound_by_impu(impus[0])
        raise UnknownBinding("the request names no identity")
