"""The configuration-management side of a migration, TR 23.781 solution 2 steps 1-13.

``PrimaryCm.migrate`` plays the primary configuration management server (CM): it
authorises the user (step 2), chooses the partner system (3), gets outbound migration
identities from its own SIP database (4-6), asks the partner's CM for access (7) and gets
its answer (8, 12: the partner checked the request and allocated inbound identities bound
to ours, 9-11), and builds the response to the UE (13): the inbound identities and the
partner's initial UE configuration, which the UE keeps beside its primary configuration
(TR 23.781 solution 2 NOTE 4).

No I/O here: the primary store and the partner's CM are passed in (``PrimaryDatabase`` and
``PartnerAccess``), so every path, failures included, is tested without a network. The
states and what undoes each are one table (``COMPENSATIONS``): a failure at any step undoes
what the earlier steps created, newest first, so nothing is left half-provisioned; an
outbound binding that existed before this run is left as it was (it serves an earlier,
working migration).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from gateway.migration.coverage import Location
from gateway.migration.directory import Directory, PartnerSystem


class State(enum.Enum):
    """Where a migration set-up stands; the value is the TR 23.781 step that reached it."""

    REQUESTED = "1"  # the UE (or an operator for it) asked to migrate
    AUTHORISED = "2"  # the user may migrate to this partner (subscriber, IMPU, agreement)
    PARTNER_CHOSEN = "3"
    OUTBOUND_ALLOCATED = "4-6"  # outbound identities bound in the primary SIP database
    ACCESS_REQUESTED = "7"
    ACCESS_GRANTED = "8-12"  # the partner allocated inbound identities bound to ours
    UE_CONFIGURED = "13"
    FAILED = "failed"


# state -> the next state on success (h11-style: the order of the procedure as data)
NEXT: dict[State, State] = {
    State.REQUESTED: State.AUTHORISED,
    State.AUTHORISED: State.PARTNER_CHOSEN,
    State.PARTNER_CHOSEN: State.OUTBOUND_ALLOCATED,
    State.OUTBOUND_ALLOCATED: State.ACCESS_REQUESTED,
    State.ACCESS_REQUESTED: State.ACCESS_GRANTED,
    State.ACCESS_GRANTED: State.UE_CONFIGURED,
}


class Exit(enum.IntEnum):
    """Exit codes of `cxgw migrate` (docs/migration.md)."""

    OK = 0
    STORE = 1  # the primary SIP database failed (unavailable, locked, corrupt)
    USAGE = 2  # bad command line or partners file
    NOT_AUTHORISED = 3  # step 2: unknown user, IMPU not the user's, no agreement
    NO_PARTNER = 4  # step 3: unknown partner id, or no partner covers the location
    PARTNER_REFUSED = 5  # steps 7-12: unreachable, TLS, token refused, the partner said no, a bad answer


class MigrationError(Exception):
    """A step failed; ``str()`` is the one line a user reads."""

    def __init__(self, step: str, exit_code: Exit, message: str) -> None:
        super().__init__(message)
        self.step, self.exit_code = step, exit_code


@dataclass(frozen=True, slots=True)
class Identities:
    impi: str
    impu: str


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Step 7: what the primary CM sends the partner's CM (TR 23.781: the primary SIP
    database's identifier and the outbound identities, never the real ones)."""

    primary_realm: str
    primary_host: str | None
    outbound: Identities


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Steps 8-12: the partner's answer: inbound identities and its initial UE configuration."""

    inbound: Identities
    partner_realm: str
    pcscf: str | None  # the partner's P-CSCF address for the UE, when the partner gives one
    created: bool = True  # False when the partner returned a binding that already existed


class PrimaryDatabase(Protocol):
    """What the primary CM reads of its SIP database (hss_store.store.HssStore); it writes
    through hss_store.operations, the rules `cxgw provision` and the provisioning API share."""

    def get_subscriber(self, impi: str) -> Any: ...
    def may_migrate(self, partner_id: str, impi: str) -> bool: ...
    def outbound_for(self, real_impi: str, real_impu: str, partner_id: str) -> Any: ...


class PartnerAccess(Protocol):
    """The partner's CM as the primary CM reaches it (steps 7, 8, 12)."""

    def request_access(self, partner: PartnerSystem, request: AccessRequest) -> AccessGrant:
        """The access request; raises MigrationError (step 7, 8 or 12) when not granted."""

    def withdraw(self, partner: PartnerSystem, inbound_impi: str) -> None:
        """Undo a grant (revoke the inbound binding at the partner)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the procedure as it ran: step number, what happened, the identities."""

    step: str
    text: str


@dataclass
class Migration:
    """A migration set-up as it progresses; ``ue_configuration`` is step 13's result."""

    real: Identities | None = None
    partner: PartnerSystem | None = None
    outbound: Identities | None = None
    outbound_created: bool = False
    grant: AccessGrant | None = None
    state: State = State.REQUESTED
    reached: list[State] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)

    def ue_configuration(self) -> dict[str, Any]:
        """Step 13: what the UE receives. It keeps its primary configuration (NOTE 4) and adds
        this one for the partner system."""
        assert self.grant is not None and self.partner is not None and self.real is not None
        return {
            "partner": self.partner.id,
            "partner_realm": self.grant.partner_realm,
            "pcscf": self.grant.pcscf,
            "impi": self.grant.inbound.impi,
            "impu": self.grant.inbound.impu,
            "keep_primary_configuration": {"impi": self.real.impi, "impu": self.real.impu},
        }


class PrimaryCm:
    """The primary configuration management server of TR 23.781 solution 2."""

    def __init__(self, store: PrimaryDatabase, directory: Directory, access: PartnerAccess,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.store, self.directory, self.access = store, directory, access
        self.on_event = on_event

    def migrate(self, impi: str, impu: str | None = None, *, partner_id: str | None = None,
                location: Location | None = None) -> Migration:
        """Steps 2-13 for one user; MigrationError after undoing what was done."""
        migration = Migration()
        self._say(migration, State.REQUESTED.value, f"migration requested for {impi}"
                  + (f" to {partner_id}" if partner_id else f" at {location}" if location else ""))
        try:
            candidates, how = self._candidates(partner_id, location)
            allowed = self._authorise(migration, impi, impu, candidates)
            self._choose_partner(migration, allowed, how)
            self._allocate_outbound(migration)
            self._request_access(migration)
            self._configure_ue(migration)
        except MigrationError as error:
            self.fail(migration, error)
        return migration

    def fail(self, migration: Migration, error: MigrationError) -> NoReturn:
        """Undo what the migration created so far, record the failure and raise ``error``
        (also for a failure after :meth:`migrate` returned: step 13 not delivered)."""
        self._compensate(migration)
        self._say(migration, error.step, f"failed: {error}")
        migration.state = State.FAILED
        raise error

    # -- the steps ------------------------------------------------------------------------------

    def _candidates(self, partner_id: str | None, location: Location | None) -> tuple[list[PartnerSystem], str]:
        """The partner systems step 3 may choose from (looked up first: step 2 needs them)."""
        if partner_id is not None:
            partner = self.directory.by_id(partner_id)
            if partner is None:
                raise MigrationError("3", Exit.NO_PARTNER,
                                     f"unknown partner {partner_id!r} (known: {self.directory.known()})")
            return [partner], "by identifier"
        if location is not None:
            covering = self.directory.covering(location)
            if not covering:
                raise MigrationError("3", Exit.NO_PARTNER, f"no partner system covers {location} "
                                     f"(known: {self.directory.known()}); give --partner ID or add its areas")
            return covering, f"by location {location}"
        raise MigrationError("3", Exit.USAGE, "choose the partner: --partner ID or --location LAT,LON")

    def _authorise(self, migration: Migration, impi: str, impu: str | None,
                   candidates: list[PartnerSystem]) -> list[PartnerSystem]:
        """Step 2: the subscriber exists, the IMPU is theirs, an agreement covers them."""
        from hss_store.errors import InvalidIdentity, StoreError, UnknownSubscriber

        try:
            subscriber = self.store.get_subscriber(impi)
            chosen = impu or subscriber.impus[0]
            if chosen not in subscriber.impus:
                raise MigrationError("2", Exit.NOT_AUTHORISED, f"{chosen} is not a public identity of {impi} "
                                     f"(its IMPUs: {', '.join(subscriber.impus)})")
            allowed = [partner for partner in candidates if self.store.may_migrate(partner.id, impi)]
        except InvalidIdentity as error:
            raise MigrationError("2", Exit.USAGE, str(error)) from None
        except UnknownSubscriber:
            raise MigrationError("2", Exit.NOT_AUTHORISED, f"{impi} is not a subscriber of "
                                 f"{self.directory.primary_realm}; add it with: cxgw provision subscriber add") from None
        except StoreError as error:
            raise MigrationError("2", Exit.STORE, f"the primary SIP database: {error}") from None
        if not allowed:
            names = " or ".join(partner.id for partner in candidates)
            raise MigrationError("2", Exit.NOT_AUTHORISED,
                                 f"no agreement between {self.directory.primary_realm} and {names} for {impi}; "
                                 f"add one with: cxgw provision agreement add {candidates[0].id} --user {impi}")
        migration.real = Identities(impi, chosen)
        self._advance(migration, State.AUTHORISED, f"{impi} ({chosen}) authorised: a subscriber with an agreement "
                      f"with {', '.join(partner.id for partner in allowed)}")
        return allowed

    def _choose_partner(self, migration: Migration, allowed: list[PartnerSystem], how: str) -> None:
        partner = allowed[0]
        migration.partner = partner
        self._advance(migration, State.PARTNER_CHOSEN, f"partner {partner.id} chosen {how} ({partner.api_url})")

    def _allocate_outbound(self, migration: Migration) -> None:
        """Steps 4-6 through the provisioning rules the CLI and the API share (hss_store.operations)."""
        from hss_store import operations
        from hss_store.errors import StoreError, UnknownBinding

        assert migration.real and migration.partner
        real, partner = migration.real, migration.partner
        try:
            try:
                self.store.outbound_for(real.impi, real.impu, partner.id)
                existed = True
            except UnknownBinding:
                existed = False
            binding = operations.allocate_outbound(self.store, real.impi, real.impu, partner.id)  # type: ignore[arg-type]
        except StoreError as error:
            raise MigrationError("4-6", Exit.STORE, f"outbound identities for {real.impi} and {partner.id}: "
                                 f"{error}") from None
        migration.outbound = Identities(binding["outbound_impi"], binding["outbound_impu"])
        migration.outbound_created = not existed
        self._advance(migration, State.OUTBOUND_ALLOCATED,
                      f"outbound identities {'allocated' if not existed else 'already bound'}: "
                      f"{migration.outbound.impi} / {migration.outbound.impu} -> {real.impi} / {real.impu}")

    def _request_access(self, migration: Migration) -> None:
        assert migration.outbound and migration.partner
        request = AccessRequest(self.directory.primary_realm, self.directory.primary_host, migration.outbound)
        self._advance(migration, State.ACCESS_REQUESTED,
                      f"access requested from {migration.partner.id} for {request.outbound.impi} / "
                      f"{request.outbound.impu} (primary {request.primary_host or '-'}@{request.primary_realm})")
        grant = self.access.request_access(migration.partner, request)
        migration.grant = grant
        self._advance(migration, State.ACCESS_GRANTED,
                      f"access granted by {migration.partner.id}: inbound {grant.inbound.impi} / "
                      f"{grant.inbound.impu} -> {request.outbound.impi} / {request.outbound.impu}")

    def _configure_ue(self, migration: Migration) -> None:
        assert migration.grant and migration.partner
        self._advance(migration, State.UE_CONFIGURED,
                      f"UE configured for {migration.partner.id} ({migration.grant.partner_realm}) with "
                      f"{migration.grant.inbound.impi} / {migration.grant.inbound.impu}; "
                      "primary configuration kept")

    # -- compensation ---------------------------------------------------------------------------

    def _compensate(self, migration: Migration) -> None:
        """Undo, newest first, what the states reached so far created (``COMPENSATIONS``)."""
        for state in reversed(migration.reached):
            undo = COMPENSATIONS.get(state)
            text = undo(self, migration) if undo is not None else None
            if text:
                migration.undone.append(text)
                self._say(migration, state.value, text)

    def _undo_outbound(self, migration: Migration) -> str | None:
        if migration.outbound is None or not migration.outbound_created:
            return None
        from hss_store import operations
        from hss_store.errors import StoreError

        try:
            operations.revoke_binding(self.store, migration.outbound.impi, direction="outbound")  # type: ignore[arg-type]
        except StoreError as error:
            return f"could not revoke outbound {migration.outbound.impi}: {error}; revoke it with: " \
                   f"cxgw provision binding revoke {migration.outbound.impi} --direction outbound"
        return f"outbound binding {migration.outbound.impi} revoked (compensation)"

    def _undo_grant(self, migration: Migration) -> str | None:
        if migration.grant is None or not migration.grant.created or migration.partner is None:
            return None
        try:
            self.access.withdraw(migration.partner, migration.grant.inbound.impi)
        except MigrationError as error:
            return f"could not withdraw inbound {migration.grant.inbound.impi} at {migration.partner.id}: {error}"
        return f"inbound binding {migration.grant.inbound.impi} revoked at {migration.partner.id} (compensation)"

    # -- events ---------------------------------------------------------------------------------

    def _advance(self, migration: Migration, state: State, text: str | None = None) -> None:
        if NEXT.get(migration.state) is not state:
            raise AssertionError(f"migration state {migration.state.name} cannot go to {state.name}")
        migration.state = state
        migration.reached.append(state)
        if text:
            self._say(migration, state.value, text)

    def _say(self, migration: Migration, step: str, text: str) -> None:
        event = Event(step, text)
        migration.events.append(event)
        if self.on_event:
            self.on_event(event)


# state reached -> what undoes it (steps that create nothing have no entry)
COMPENSATIONS: dict[State, Callable[[PrimaryCm, Migration], str | None]] = {
    State.OUTBOUND_ALLOCATED: PrimaryCm._undo_outbound,
    State.ACCESS_GRANTED: PrimaryCm._undo_grant,
}
