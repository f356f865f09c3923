"""A revoked inbound binding takes effect at once: the partner role watches the store's
change log of bindings (written by `cxgw provision ... revoke` in another process, or by the
provisioning API) and sends a Registration-Termination-Request (TS 29.228 §6.1.3, TS 29.229
§6.1.9) to the S-CSCF that registered the user, which de-registers it.

Polling by event id works on both backends and misses nothing (ids grow in commit order,
hss_store's ``binding_events_since``); it runs every ``[partner] revocation_poll`` seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from cx_codec import decode_lazy
from cx_codec.commands import RegistrationTerminationRequest, new_session_id
from gateway.applications.caches import InboundBindingCache, LogWatch, Preload
from gateway.applications.cx import CX, VENDOR_3GPP, Local
from gateway.applications.storage import StoreAccess
from hss_store.errors import StoreError
from hss_store.records import BindingEvent

log = Logger(namespace="cxgw.revocation")

NO_STATE_MAINTAINED = 1  # TS 29.229 §6.1: Auth-Session-State of Cx
PERMANENT_TERMINATION = 0  # TS 29.229 §6.3.17 Reason-Code
_SIP_HOST = re.compile(r"^sips?:(?:[^@;]*@)?(\[[^\]]+\]|[^:;>]+)")


def scscf_host(server_name: str) -> str | None:
    """The host of an S-CSCF's SIP URI (``sip:scscf.partner.example:6060`` ->
    ``scscf.partner.example``): its Diameter identity when no SAR told us better."""
    match = _SIP_HOST.match(server_name)
    return match.group(1) if match else None


class RevocationWatcher(LogWatch):
    def __init__(
        self, store: StoreAccess, local: Local, send: Callable[[bytes], Deferred[bytes]], clock: Any,
        interval: float, registrars: dict[str, tuple[str, str]], bindings: InboundBindingCache | None = None,
    ) -> None:
        self.store = store
        self.local = local
        self.send = send
        # inbound IMPI -> (Origin-Host, Origin-Realm) of the S-CSCF whose SAR registered it
        self.registrars = registrars
        # the partner role's bindings in memory: each event drops the binding it names
        self.bindings = bindings
        self.last_id: int | None = None
        self.terminated = 0
        self._busy = False
        self._dropped = False  # the bindings in memory were dropped by a failed poll: load them again
        super().__init__(clock, interval)  # (its preload: every active inbound binding, at start)

    def poll(self) -> Deferred[None] | None:
        if self._busy:
            return None
        self._busy = True
        store = self.store.store
        if self.last_id is None:  # revocations made before we started are not ours to act on
            result = self.store.call(store.last_binding_event_id)
            result.addCallback(self._started)
        else:
            result = self.store.call(store.binding_events_since, self.last_id)
            result.addCallback(self._events)
        result.addErrback(self._poll_failed)
        result.addBoth(self._done)
        return result

    def _started(self, last: int) -> None:
        self.last_id = last
        if self.bindings is not None:
            self.bindings.watching()  # from now on, every change reaches the cache
            self._load()

    def _load(self) -> None:
        assert self.bindings is not None
        self.preload = Preload(self.store, "inbound", self.bindings, self.clock)
        self.preload.start()

    def _done(self, _: object) -> None:
        self._busy = False

    def _poll_failed(self, failure: Any) -> None:
        """The log did not answer, so a revocation made meanwhile would go unseen: nothing
        is served from memory until a poll reads the log again (each MAR reads the store,
        which answers or fails as it is), then the bindings are loaded again. The log's
        position is kept, so the revocations of the outage still send their RTRs. (The
        primary's watch drops its caches the same way: ``caches.PrimaryWatch``.)"""
        failure.trap(StoreError)
        if self.bindings is None or self.last_id is None or self._dropped:
            self._store_failed(failure)  # nothing held (yet, or any more)
            return
        if self.preload is not None:
            self.preload.stop()
            self.preload = None
        self.bindings.clear()
        self._dropped = True
        log.warn("revocation watch: the store did not answer ({error}); the bindings held in memory are "
                 "dropped until it does, trying again", error=failure.value)

    def _store_failed(self, failure: Any) -> None:
        failure.trap(StoreError)
        log.warn("revocation watch: the store did not answer ({error}); trying again", error=failure.value)

    def _events(self, events: list[BindingEvent]) -> Deferred[None]:
        work: Deferred[None] = succeed(None)
        for event in events:
            self.last_id = event.id
            if self.bindings is not None and event.direction == "inbound":
                self.bindings.forget(event.impi)
            if event.direction == "inbound" and event.event == "revoked":
                work.addCallback(lambda _, event=event: self._terminate(event))
        if self._dropped:  # the log answers again (and its events are applied): load again
            self._dropped = False
            self._load()
        return work

    def _terminate(self, event: BindingEvent) -> Deferred[None]:
        store = self.store.store
        result = self.store.call(store.inbound_registration, event.impi)
        result.addCallback(self._send_rtr, event)
        result.addErrback(self._store_failed)
        return result

    def _send_rtr(self, server_name: str | None, event: BindingEvent) -> Deferred[None] | None:
        registrar = self.registrars.pop(event.impi, None)
        if registrar is None and server_name:
            host = scscf_host(server_name)
            registrar = (host, self.local.realm) if host else None
        if registrar is None:
            return None  # not registered: nothing to terminate
        host, realm = registrar
        rtr = RegistrationTerminationRequest(
            session_id=new_session_id(self.local.host),
            vendor_specific_application_id={"vendor_id": VENDOR_3GPP, "auth_application_id": CX},
            auth_session_state=NO_STATE_MAINTAINED,
            origin_host=self.local.host, origin_realm=self.local.realm,
            destination_host=host, destination_realm=realm,
            user_name=event.impi, public_identity=[event.impu],
            deregistration_reason={"reason_code": PERMANENT_TERMINATION, "reason_info": "migration binding revoked"},
        ).encode()
        log.info("binding of {impi} revoked: RTR to {host}", impi=event.impi, host=host)
        answer = self.send(rtr)
        answer.addCallback(self._answered, event, host)
        return answer

    def _answered(self, answer: bytes, event: BindingEvent, host: str) -> Deferred[None]:
        result_code = decode_lazy(answer).get("Result-Code")
        if result_code == 2001:
            self.terminated += 1
            cleared = self.store.call(self.store.store.set_inbound_registration, event.impi, None)
            cleared.addErrback(self._store_failed)
            return cleared  # type: ignore[return-value]
        log.warn("RTR for {impi} to {host} answered {code}", impi=event.impi, host=host, code=result_code)
        return succeed(None)
