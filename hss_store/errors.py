"""Typed errors of the SIP database, one base class (:class:`StoreError`).

Every message names the thing, the value and the fix, so an operator reading a log
line knows what to do. The gateway maps the classes to Diameter answers; the
``experimental_result`` hint is the TS 29.229 §6.2.2 code a Cx answer would carry
(``None`` where the answer is a base-protocol error such as 3002/3004).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised by :mod:`hss_store`."""

    #: TS 29.229 §6.2.2 Experimental-Result-Code this error usually maps to, if any.
    experimental_result: int | None = None


class InvalidIdentity(StoreError, ValueError):
    """A malformed IMPI (``user@realm``) or IMPU (``sip:``/``tel:`` URI)."""


class InvalidKey(StoreError, ValueError):
    """K, OP, OPc or AMF of the wrong length, or a key the master key cannot decrypt."""


class InvalidRequest(StoreError, ValueError):
    """A bad argument that is neither an identity nor a key (count, TTL, pattern...)."""


class UnknownSubscriber(StoreError, LookupError):
    """No subscriber with this IMPI."""

    experimental_result = 5001  # DIAMETER_ERROR_USER_UNKNOWN


class UnknownIdentity(StoreError, LookupError):
    """An identity the store does not know (an unbound migration identity, for one)."""

    experimental_result = 5001  # DIAMETER_ERROR_USER_UNKNOWN


class IdentitiesDontMatch(UnknownIdentity):
    """The IMPU exists but is not in the implicit registration set of this IMPI."""

    experimental_result = 5002  # DIAMETER_ERROR_IDENTITIES_DONT_MATCH


class UnknownBinding(UnknownIdentity):
    """No active migration binding for this identity (never bound, revoked or expired)."""


class DuplicateSubscriber(StoreError):
    """A subscriber with this IMPI already exists."""


class SchemeNotAllowed(StoreError):
    """The subscriber may not use this SIP-Authentication-Scheme."""

    experimental_result = 5006  # DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED


class ResyncFailure(StoreError):
    """AUTS whose MAC-S does not verify (TS 33.102 §6.3.5); the SQN was left unchanged."""


class SqnExhausted(StoreError):
    """SEQ reached its maximum (TS 33.102 Annex C.1.2); the subscriber needs new keys."""


class PoolExhausted(StoreError):
    """The configured pool of migration identities has no free entry left."""


class NoAgreement(StoreError):
    """No migration agreement lets this partner migrate this user."""


class NoAllocationPolicy(StoreError):
    """No policy says how to allocate migration identities of this direction."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (PostgreSQL down, file not openable)."""


class StoreLocked(StoreError):
    """The SQLite file stayed locked by another writer past the busy timeout."""


class StoreCorrupt(StoreError):
    """The database file is not a database, is damaged, or has a schema we do not know."""


class IncompatibleSchema(StoreCorrupt):
    """The schema version in the database is newer than this code knows."""


class MasterKeyMismatch(InvalidKey):
    """The master key given does not match the one the keys were protected with."""
