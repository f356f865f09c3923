"""The storage interface of the SIP database: one ABC, two backends.

``SqliteStore`` (embedded default, one file) and ``PostgresStore`` (several gateway
instances sharing one store) implement it; :func:`hss_store.open_store` picks one from
a path or a ``postgresql://`` URL.

Every call is synchronous. On SQLite the calls are short in-process operations meant to
be made straight from the Twisted reactor thread (``in_process`` is True); on PostgreSQL
each call is a network round trip, so the gateway should run them in a thread pool
(``in_process`` is False; the store may be called from several threads at once, and each
call ends within the store's ``timeout``). Errors are :class:`hss_store.errors.StoreError`
subclasses.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from hss_store.aka import AkaVector
from hss_store.allocation import AllocationPolicy
from hss_store.records import (
    Agreement,
    AgreementEvent,
    AuthResult,
    BindingEvent,
    InboundBinding,
    OutboundBinding,
    PrimaryDatabase,
    Subscriber,
)

MAX_VECTORS_PER_REQUEST = 32  # one per IND slot (TS 33.102 Annex C.3.2)


class HssStore(abc.ABC):
    """Subscribers and AKA (HSS role), migration bindings and agreements."""

    #: True when calls are in-process and fast enough for the reactor thread.
    in_process: bool = False
    #: True when K and OPc are stored wrapped by a master key (hss_store.keywrap).
    protects_keys: bool = False

    # -- lifecycle ---------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    def checkpoint_in_background(self) -> None:
        """For a long-running writer (the gateway): keep the store's housekeeping out of
        the caller's thread. An embedded file does it in a thread of its own (SQLite's WAL
        checkpoints, hss_store.checkpoint); a database server does its own: nothing to do."""
        return None

    def __enter__(self) -> HssStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- subscribers (HSS role) ----------------------------------------------------
    @abc.abstractmethod
    def add_subscriber(self, subscriber: Subscriber) -> Subscriber:
        """Store a new subscriber (build it with ``Subscriber.new``); DuplicateSubscriber if present."""

    @abc.abstractmethod
    def get_subscriber(self, impi: str) -> Subscriber:
        """The subscriber with this IMPI, or UnknownSubscriber."""

    @abc.abstractmethod
    def list_subscribers(self, *, after: str | None = None, limit: int = 100) -> list[Subscriber]:
        """Subscribers ordered by IMPI, starting after ``after`` (keyset paging)."""

    @abc.abstractmethod
    def remove_subscriber(self, impi: str) -> None: ...

    @abc.abstractmethod
    def check_impu(self, impi: str, impu: str) -> None:
        """UnknownSubscriber, or IdentitiesDontMatch unless the IMPU belongs to the IMPI (TS 29.228 §6.3.1)."""

    @abc.abstractmethod
    def check_scheme(self, impi: str, scheme: str) -> None:
        """SchemeNotAllowed unless the subscriber may use this SIP-Authentication-Scheme."""

    @abc.abstractmethod
    def generate_vectors(self, impi: str, count: int = 1) -> list[AkaVector]:
        """``count`` fresh AKA vectors; their SQNs are committed before this returns."""

    @abc.abstractmethod
    def resync(self, impi: str, rand_auts: bytes, count: int = 1) -> list[AkaVector]:
        """Re-synchronise from RAND || AUTS (30 bytes) and return fresh vectors.

        ResyncFailure (SQN unchanged) when MAC-S does not verify (TS 33.102 §6.3.5).
        """

    @abc.abstractmethod
    def set_scscf_name(self, impi: str, scscf_name: str | None) -> None:
        """Store (or clear, with None) the S-CSCF name assigned to the user (TS 29.228 §6.3.4)."""

    @abc.abstractmethod
    def get_scscf_name(self, impi: str) -> str | None: ...

    @abc.abstractmethod
    def impi_of_impu(self, impu: str) -> str:
        """The IMPI whose implicit registration set holds ``impu`` (an LIR names only the
        public identity, TS 29.228 §6.2.1), or UnknownIdentity."""

    # -- Cx procedures, one call and one transaction each (HSS role) -------------------
    @abc.abstractmethod
    def multimedia_auth(
        self,
        impi: str,
        impu: str | None,
        scheme: str,
        count: int,
        *,
        rand_auts: bytes | None = None,
        server_name: str | None = None,
        max_count: int = MAX_VECTORS_PER_REQUEST,
    ) -> AuthResult:
        """The HSS side of a Multimedia-Auth-Request (TS 29.228 §6.3.1, TS 29.229 §6.1.7).

        In one transaction: UnknownSubscriber (5001) without the IMPI; IdentitiesDontMatch
        (5002) when ``impu`` is given and not in its implicit registration set; the scheme
        ``"Unknown"`` (TS 29.229 §6.3.9) resolved to the subscriber's first scheme, any
        other one checked (SchemeNotAllowed, 5006, also for a non-AKA scheme); ``count``
        brought into 1..``max_count`` (asking for more is not an error); with ``rand_auts``
        (RAND || AUTS, TS 29.229 §6.3.11) a re-synchronisation first (ResyncFailure, SQN
        and Server-Name unchanged, when MAC-S fails, TS 33.102 §6.3.5); ``server_name``
        stored when given. The SQNs are committed before the vectors are computed.
        """

    @abc.abstractmethod
    def server_assignment(
        self, impi: str, impu: str | None, server_name: str | None, assignment_type: int
    ) -> Subscriber:
        """The HSS side of a Server-Assignment-Request (TS 29.228 §6.1.2), one transaction.

        Registration types (REGISTRATION, RE_REGISTRATION, UNREGISTERED_USER) store
        ``server_name`` (InvalidRequest without one); de-registrations clear it, except
        TIMEOUT_/USER_DEREGISTRATION_STORE_SERVER_NAME, which keep it; other types change
        nothing (see ``records.ServerAssignmentType``). Identity errors as for
        :meth:`multimedia_auth`. Returns the subscriber afterwards (its IMPUs make the
        user profile).
        """

    # -- agreements (primary side) -------------------------------------------------
    @abc.abstractmethod
    def add_agreement(self, agreement: Agreement) -> None: ...

    @abc.abstractmethod
    def remove_agreement(self, agreement: Agreement) -> None: ...

    @abc.abstractmethod
    def list_agreements(self, partner_id: str | None = None) -> list[Agreement]: ...

    @abc.abstractmethod
    def agreement_events_since(self, after_id: int, limit: int = 1000) -> list[AgreementEvent]:
        """Agreements added and removed with an id above ``after_id``, oldest first (ids
        grow in commit order, as the bindings' log; start from
        :meth:`last_agreement_event_id`)."""

    @abc.abstractmethod
    def last_agreement_event_id(self) -> int:
        """The id of the newest agreement event, 0 when there is none."""

    @abc.abstractmethod
    def may_migrate(self, partner_id: str, impi: str) -> bool:
        """True when an agreement lets ``partner_id`` migrate the user with real IMPI ``impi``."""

    def require_agreement(self, partner_id: str, impi: str) -> None:
        """NoAgreement unless :meth:`may_migrate`."""
        from hss_store.agreements import no_agreement

        if not self.may_migrate(partner_id, impi):
            raise no_agreement(partner_id, impi)

    # -- allocation policy and pools -----------------------------------------------
    @abc.abstractmethod
    def set_policy(self, policy: AllocationPolicy) -> None: ...

    @abc.abstractmethod
    def get_policy(self, direction: str) -> AllocationPolicy:
        """The policy of ``inbound`` or ``outbound``, or NoAllocationPolicy."""

    @abc.abstractmethod
    def add_to_pool(self, direction: str, pairs: Iterable[tuple[str, str]]) -> int:
        """Load (IMPI, IMPU) pairs into a direction's pool; returns how many were new."""

    @abc.abstractmethod
    def pool_status(self, direction: str) -> tuple[int, int]:
        """(free, used) entries in a direction's pool."""

    # -- outbound bindings (primary side, TR 23.781 steps 4-6) -------------------------
    @abc.abstractmethod
    def allocate_outbound(
        self, real_impi: str, real_impu: str, partner_id: str, *, rotate: bool | None = None
    ) -> OutboundBinding:
        """Bind outbound identities to (real IMPI, real IMPU, partner); idempotent unless rotating.

        Requires the subscriber, the IMPU in its set and an agreement for the partner.
        """

    @abc.abstractmethod
    def outbound_by_impi(self, outbound_impi: str) -> OutboundBinding:
        """The active binding of an outbound IMPI, or UnknownBinding (hot path, primary gateway)."""

    @abc.abstractmethod
    def outbound_by_impu(self, outbound_impu: str) -> OutboundBinding: ...

    @abc.abstractmethod
    def outbound_for(self, real_impi: str, real_impu: str, partner_id: str) -> OutboundBinding:
        """The active binding of a real identity for a partner (the reverse direction)."""

    @abc.abstractmethod
    def revoke_outbound(self, outbound_impi: str) -> OutboundBinding: ...

    @abc.abstractmethod
    def list_outbound(self, *, after: str | None = None, limit: int = 100) -> list[OutboundBinding]: ...

    # -- inbound bindings (partner side, TR 23.781 steps 9-11) -------------------------
    @abc.abstractmethod
    def allocate_inbound(
        self, primary: PrimaryDatabase, primary_impi: str, primary_impu: str, *, rotate: bool | None = None
    ) -> InboundBinding:
        """Bind inbound identities of our own domain to the user's primary identities; idempotent."""

    @abc.abstractmethod
    def inbound_by_impi(self, inbound_impi: str) -> InboundBinding:
        """The active binding of an inbound IMPI, or UnknownBinding (hot path, partner gateway)."""

    @abc.abstractmethod
    def inbound_by_impu(self, inbound_impu: str) -> InboundBinding: ...

    @abc.abstractmethod
    def inbound_for(self, primary: PrimaryDatabase, primary_impi: str, primary_impu: str) -> InboundBinding: ...

    @abc.abstractmethod
    def revoke_inbound(self, inbound_impi: str) -> InboundBinding: ...

    @abc.abstractmethod
    def list_inbound(self, *, after: str | None = None, limit: int = 100) -> list[InboundBinding]: ...

    @abc.abstractmethod
    def bindings_of(self, identity: str) -> list[InboundBinding | OutboundBinding]:
        """Every binding, revoked and expired ones too, that ``identity`` names: as its
        migration IMPI or IMPU, or as the real (outbound) or primary (inbound) identity."""

    @abc.abstractmethod
    def set_inbound_registration(self, inbound_impi: str, server_name: str | None) -> None:
        """Record (None: clear) the S-CSCF that registered an inbound identity (its SAR's Server-Name).

        Kept on the binding, revoked or not, so that a revocation can be followed by a
        Registration-Termination-Request to that S-CSCF (TS 29.228 §6.1.3). UnknownBinding
        if the IMPI was never bound.
        """

    @abc.abstractmethod
    def inbound_registration(self, inbound_impi: str) -> str | None:
        """The S-CSCF name recorded for an inbound identity, None if not registered; UnknownBinding."""

    # -- change log of the bindings ------------------------------------------------------
    @abc.abstractmethod
    def binding_events_since(self, after_id: int, limit: int = 1000) -> list[BindingEvent]:
        """Allocations and revocations with an id above ``after_id``, oldest first.

        Ids grow in commit order on both backends, so a reader that remembers the last id
        it saw misses nothing (start from :meth:`last_binding_event_id`).
        """

    @abc.abstractmethod
    def last_binding_event_id(self) -> int:
        """The id of the newest event, 0 when there is none."""
