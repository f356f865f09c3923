"""Provisioning actions, one function each: the rules `cxgw provision` and the
provisioning API (gateway.provisioning) share, so that a rule lives in one place.

Every function takes an open store (:class:`hss_store.store.HssStore`) and plain arguments,
returns plain JSON-able dicts and lists, and raises one error type,
:class:`ProvisioningError`, whose ``code`` is stable (the API's ``error.code``, see
``docs/openapi.json``) and whose message names the thing and the fix.

The set-up steps of a migration (TR 23.781 solution 2) are :func:`allocate_outbound`
(steps 4-6, the primary's SIP database binds outbound identities to the user's real ones
for one partner) and :func:`allocate_inbound` (steps 9-11, the partner's SIP database binds
inbound identities of its own domain to those outbound ones). The chain a migrated user's
requests follow is real -> outbound -> inbound; :func:`show_bindings` finds the bindings
of any identity of that chain. A revocation (:func:`revoke_binding`) is written to the
store's binding change log, which a running partner gateway polls (gateway.applications.
revocation): a registered user's S-CSCF gets a Registration-Termination-Request.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from hss_store.allocation import DIRECTIONS, AllocationPolicy, check_direction, expand_range
from hss_store.errors import (
    DuplicateSubscriber,
    IdentitiesDontMatch,
    InvalidIdentity,
    InvalidKey,
    InvalidRequest,
    MasterKeyMismatch,
    NoAgreement,
    NoAllocationPolicy,
    PoolExhausted,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    UnknownIdentity,
    UnknownSubscriber,
)
from hss_store.records import (
    AGREEMENT_SCOPES,
    DEFAULT_AMF,
    DEFAULT_SCHEMES,
    KNOWN_SCHEMES,
    Agreement,
    InboundBinding,
    OutboundBinding,
    PrimaryDatabase,
    Subscriber,
)
from hss_store.store import HssStore

P = ParamSpec("P")
T = TypeVar("T")

# The stable error codes (docs/openapi.json, components.schemas.Error).
INVALID_ARGUMENT = "invalid_argument"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
FORBIDDEN = "forbidden"
UNSUPPORTED = "unsupported"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"

# The store's error classes and the code each becomes; the first match wins, so
# subclasses come before their bases.
CODE_OF_STORE_ERROR: tuple[tuple[type[StoreError], str], ...] = (
    (MasterKeyMismatch, INTERNAL),  # the master key given to the store is not its own
    (IdentitiesDontMatch, INVALID_ARGUMENT),  # an IMPU outside the user's implicit set
    (UnknownIdentity, NOT_FOUND),  # UnknownBinding too
    (UnknownSubscriber, NOT_FOUND),
    (InvalidIdentity, INVALID_ARGUMENT),
    (InvalidKey, INVALID_ARGUMENT),
    (InvalidRequest, INVALID_ARGUMENT),
    (DuplicateSubscriber, CONFLICT),
    (PoolExhausted, CONFLICT),
    (NoAllocationPolicy, CONFLICT),
    (NoAgreement, FORBIDDEN),
    (StoreLocked, UNAVAILABLE),
    (StoreUnavailable, UNAVAILABLE),
    (StoreCorrupt, INTERNAL),
)
BOTH = "both"
LOOKUP_DIRECTIONS = (*DIRECTIONS, BOTH)
MAX_LIMIT = 1000  # rows per page at most


class ProvisioningError(StoreError):
    """A provisioning action refused or failed: ``code`` (stable) and a message with the fix.

    ``kind`` is the name of the store error it came from (``InvalidIdentity``...), or the
    code when the rule is this module's own.
    """

    def __init__(self, code: str, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind or code


def code_of(error: StoreError) -> str:
    if isinstance(error, ProvisioningError):
        return error.code
    return next((code for cls, code in CODE_OF_STORE_ERROR if isinstance(error, cls)), INTERNAL)


def _action(function: Callable[P, T]) -> Callable[P, T]:
    """Store errors leave as ProvisioningError with their code."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except ProvisioningError:
            raise
        except StoreError as error:
            raise ProvisioningError(code_of(error), str(error), type(error).__name__) from error

    return wrapper


def _invalid(message: str) -> ProvisioningError:
    return ProvisioningError(INVALID_ARGUMENT, message)


def _direction(direction: str, allowed: Iterable[str] = DIRECTIONS) -> str:
    allowed = tuple(allowed)
    if direction not in allowed:
        raise _invalid(f"direction {direction!r} is unknown; use {' or '.join(allowed)}")
    return direction


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _invalid(f"limit {limit!r} is not a page size; use 1-{MAX_LIMIT}")
    return limit


# -- opening the store ----------------------------------------------------------------------------

PROVISIONING_TIMEOUT = 600.0  # seconds a provisioning call may take on PostgreSQL (bulk pool loads)


def open_for_provisioning(
    target: str, *, create: bool = False, read_only: bool = False, master_key: Any = None
) -> HssStore:
    """The store a provisioning command works on: a ``postgresql://`` URL, or an SQLite file
    that exists (``create`` makes a new one; a mistyped path must not become an empty store),
    opened read-only (SQLite ``mode=ro``) for commands that only read. Other URLs
    (``mysql://``...) are refused as unsupported."""
    import os

    from hss_store import is_postgres_url, open_store

    if not isinstance(target, str) or not target.strip():
        raise _invalid("no store given; pass --db PATH.db or --db postgresql://... (or set $CXGW_DB)")
    options: dict[str, Any] = {"master_key": master_key}
    if is_postgres_url(target):
        return _opened(open_store, target, timeout=PROVISIONING_TIMEOUT, **options)
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise ProvisioningError(
            UNSUPPORTED,
            f"{scheme}:// stores are not supported; use postgresql://user@host/dbname or the path of an SQLite file",
        )
    if os.path.isdir(target):
        raise _invalid(f"{target!r} is a directory; name an SQLite file in it, such as {os.path.join(target, 'hss.db')!r}")
    if not os.path.exists(target):
        if not create:
            raise ProvisioningError(
                NOT_FOUND,
                f"no store at {target!r}; check the path, or create one with: cxgw provision --db {target} init",
            )
        if not os.path.isdir(os.path.dirname(os.path.abspath(target))):
            raise _invalid(f"the directory of {target!r} does not exist; create it first")
        read_only = False
    if read_only:
        options["read_only"] = True
    return _opened(open_store, target, **options)


def _opened(open_store: Callable[..., HssStore], target: str, **options: Any) -> HssStore:
    try:
        return open_store(target, **options)
    except ProvisioningError:
        raise
    except StoreError as error:
        raise ProvisioningError(code_of(error), str(error), type(error).__name__) from error


# -- records as dicts -------------------------------------------------------------------------


def subscriber_dict(sub: Subscriber, show_keys: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "impi": sub.impi, "impus": list(sub.impus), "amf": sub.amf.hex(), "sqn": sub.sqn,
        "schemes": list(sub.schemes), "scscf_name": sub.scscf_name, "groups": list(sub.groups),
    }  # fmt: skip
    if show_keys:
        data.update(k=sub.k.hex(), opc=sub.opc.hex())
    return data


def binding_state(binding: InboundBinding | OutboundBinding, now: float) -> str:
    if binding.revoked_at is not None:
        return "revoked"
    return "active" if binding.is_active(now) else "expired"


def binding_dict(binding: InboundBinding | OutboundBinding, now: float | None = None) -> dict[str, Any]:
    state = binding_state(binding, time.time() if now is None else now)
    times = {"created_at": binding.created_at, "expires_at": binding.expires_at, "revoked_at": binding.revoked_at}
    if isinstance(binding, InboundBinding):
        return {
            "direction": "inbound", "state": state, "inbound_impi": binding.inbound_impi,
            "inbound_impu": binding.inbound_impu, "primary_realm": binding.primary_realm,
            "primary_host": binding.primary_host, "primary_impi": binding.primary_impi,
            "primary_impu": binding.primary_impu, **times,
        }  # fmt: skip
    return {
        "direction": "outbound", "state": state, "outbound_impi": binding.outbound_impi,
        "outbound_impu": binding.outbound_impu, "real_impi": binding.real_impi, "real_impu": binding.real_impu,
        "partner_id": binding.partner_id, **times,
    }  # fmt: skip


def agreement_dict(agreement: Agreement) -> dict[str, Any]:
    return {"partner_id": agreement.partner_id, "scope": agreement.scope, "value": agreement.value}


def policy_dict(policy: AllocationPolicy) -> dict[str, Any]:
    return {
        "direction": policy.direction, "mode": policy.mode, "impi_pattern": policy.impi_pattern,
        "impu_pattern": policy.impu_pattern, "ttl_seconds": policy.ttl_seconds, "rotate": policy.rotate,
    }  # fmt: skip


# -- subscribers (the HSS role) ---------------------------------------------------------------

_warned_unprotected = False


def _warn_unprotected_keys(store: HssStore) -> None:
    """Once per process: K and OPc go into the store as they are (no master key)."""
    global _warned_unprotected
    if store.protects_keys or _warned_unprotected:
        return
    _warned_unprotected = True
    print(
        "warning: K and OPc are stored unprotected (no master key); give --master-key-file FILE "
        "or set $CXGW_MASTER_KEY (64 hex digits, an AES-256 key) to wrap them at rest",
        file=sys.stderr,
    )


def _schemes(schemes: Iterable[str] | None) -> tuple[str, ...]:
    """Only the SIP-Authentication-Scheme values of TS 29.229 §6.3.9 / TS 33.203 §6.1."""
    chosen = tuple(schemes) if schemes else DEFAULT_SCHEMES
    known = {scheme.casefold(): scheme for scheme in KNOWN_SCHEMES}
    for scheme in chosen:
        if not isinstance(scheme, str) or scheme.strip().casefold() not in known:
            raise _invalid(f"authentication scheme {scheme!r} is unknown; use one of: {', '.join(KNOWN_SCHEMES)}")
    return tuple(known[scheme.strip().casefold()] for scheme in chosen)


def _impus_free(store: HssStore, impi: str, impus: Iterable[str]) -> None:
    """An IMPU belongs to one implicit registration set (TS 23.228 §4.3.3.4): not to two IMPIs."""
    for impu in impus:
        try:
            owner = store.impi_of_impu(impu)
        except (UnknownIdentity, InvalidIdentity):
            continue
        if owner != impi:
            raise ProvisioningError(
                CONFLICT,
                f"public identity {impu!r} already belongs to subscriber {owner!r}; "
                f"remove it there first (cxgw provision subscriber remove {owner}) or use another IMPU",
            )


@_action
def add_subscriber(
    store: HssStore,
    impi: str,
    impus: Iterable[str],
    k: str | bytes,
    *,
    opc: str | bytes | None = None,
    op: str | bytes | None = None,
    amf: str | bytes = DEFAULT_AMF,
    sqn: int = 0,
    schemes: Iterable[str] | None = None,
    groups: Iterable[str] = (),
) -> dict[str, Any]:
    """A new subscriber with K and OPc (or OP); the same IMPU under another IMPI is refused."""
    subscriber = Subscriber.new(
        impi, impus, k, opc=opc, op=op, amf=amf, sqn=sqn, schemes=_schemes(schemes), groups=groups
    )
    _impus_free(store, subscriber.impi, subscriber.impus)
    _warn_unprotected_keys(store)
    return subscriber_dict(store.add_subscriber(subscriber))


@_action
def show_subscriber(store: HssStore, impi: str, *, show_keys: bool = False) -> dict[str, Any]:
    return subscriber_dict(store.get_subscriber(impi), show_keys)


@_action
def list_subscribers(store: HssStore, *, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return [subscriber_dict(s) for s in store.list_subscribers(after=after, limit=_limit(limit))]


@_action
def remove_subscriber(store: HssStore, impi: str) -> dict[str, Any]:
    store.get_subscriber(impi)  # UnknownSubscriber: the user learns of a typo
    store.remove_subscriber(impi)
    return {"result": f"removed subscriber {impi}", "impi": impi}


@_action
def import_subscribers(store: HssStore, path: str) -> dict[str, Any]:
    """Subscribers from a CSV file (hss_store.csv_import); bad rows reported by line, skipped."""
    from hss_store.csv_import import import_subscribers as load

    def add(row: dict[str, Any]) -> None:
        add_subscriber(store, **row)

    imported, errors = load(path, add)
    return {"result": f"imported {imported} subscribers, {len(errors)} errors", "imported": imported, "errors": errors}


# -- bindings (TR 23.781 steps 4-6 and 9-11) --------------------------------------------------


@_action
def allocate_outbound(
    store: HssStore, real_impi: str, real_impu: str, partner_id: str, *, rotate: bool | None = None
) -> dict[str, Any]:
    """Steps 4-6 (primary side): outbound identities for a user and a partner; idempotent."""
    return binding_dict(store.allocate_outbound(real_impi, real_impu, partner_id, rotate=rotate))


@_action
def allocate_inbound(
    store: HssStore,
    primary_realm: str,
    primary_impi: str,
    primary_impu: str,
    *,
    primary_host: str | None = None,
    rotate: bool | None = None,
) -> dict[str, Any]:
    """Steps 9-11 (partner side): inbound identities bound to the user's primary (outbound)
    identities and the primary SIP database (realm, optional host); idempotent."""
    primary = PrimaryDatabase(primary_realm, primary_host or None)
    return binding_dict(store.allocate_inbound(primary, primary_impi, primary_impu, rotate=rotate))


def _directions(direction: str) -> tuple[str, ...]:
    _direction(direction, LOOKUP_DIRECTIONS)
    return DIRECTIONS if direction == BOTH else (direction,)


@_action
def show_bindings(store: HssStore, identity: str, *, direction: str = BOTH) -> list[dict[str, Any]]:
    """Every binding ``identity`` names, in any state: as a migration IMPI or IMPU of either
    direction, or as the real (outbound) or primary (inbound) identity of the user."""
    directions = _directions(direction)
    if not isinstance(identity, str) or not identity.strip():
        raise _invalid("give an identity: a migration IMPI or IMPU, or the user's real IMPI or IMPU")
    now = time.time()
    found = [binding_dict(b, now) for b in store.bindings_of(identity)]
    found = [b for b in found if b["direction"] in directions]
    if not found:
        where = "inbound or outbound" if direction == BOTH else direction
        raise ProvisioningError(
            NOT_FOUND,
            f"no {where} migration binding names {identity!r} (as a migration identity or a user's real identity); "
            "list them with: cxgw provision binding list",
        )
    return found


@_action
def revoke_binding(store: HssStore, impi: str, *, direction: str = BOTH) -> dict[str, Any]:
    """Revoke the binding of a migration IMPI (a second revocation changes nothing). The
    store's change log tells running gateways; an inbound binding's S-CSCF gets an RTR."""
    directions = _directions(direction)
    keys = {"inbound": "inbound_impi", "outbound": "outbound_impi"}
    if not isinstance(impi, str) or not impi.strip():
        raise _invalid("give the migration IMPI of the binding to revoke")
    matches = [b for b in store.bindings_of(impi) if isinstance(b, InboundBinding | OutboundBinding)]
    matches = [b for b in matches if _direction_of(b) in directions and getattr(b, keys[_direction_of(b)]) == impi]
    if not matches:
        where = "inbound or outbound" if direction == BOTH else direction
        hint = "" if "@" in impi and not impi.startswith(("sip:", "sips:", "tel:")) else " (revoke by the IMPI, not the IMPU)"
        raise ProvisioningError(
            NOT_FOUND,
            f"no {where} migration binding has the IMPI {impi!r} to revoke{hint}; find it with: "
            f"cxgw provision binding show {impi}",
        )
    if len({_direction_of(b) for b in matches}) > 1:
        raise ProvisioningError(
            CONFLICT, f"{impi!r} is bound in both directions in this store; give --direction inbound or outbound"
        )
    revoke = store.revoke_inbound if _direction_of(matches[0]) == "inbound" else store.revoke_outbound
    return binding_dict(revoke(impi))


def _direction_of(binding: InboundBinding | OutboundBinding) -> str:
    return "inbound" if isinstance(binding, InboundBinding) else "outbound"


@_action
def list_bindings(
    store: HssStore, *, direction: str = BOTH, after: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Bindings ordered by migration IMPI, revoked and expired ones too (each with its state);
    with both directions, each direction's page (outbound first)."""
    now = time.time()
    rows: list[dict[str, Any]] = []
    for each in _directions(direction):
        listed = store.list_outbound if each == "outbound" else store.list_inbound
        rows += [binding_dict(b, now) for b in listed(after=after, limit=_limit(limit))]
    return rows


# -- agreements ----------------------------------------------------------------------------------


def _agreement(partner_id: str, scope: str, value: str | None) -> Agreement:
    if scope not in AGREEMENT_SCOPES:
        raise _invalid(f"agreement scope {scope!r} is unknown; use one of {', '.join(AGREEMENT_SCOPES)}")
    return Agreement(partner_id, scope, value or "")


def agreement_sentence(agreement: Agreement) -> str:
    """``partner-a may migrate every user`` / ``... the user alice@x`` / ``... the group police``."""
    whom = {"all": "every user", "user": f"the user {agreement.value}", "group": f"the users of group {agreement.value}"}
    return f"partner {agreement.partner_id} may migrate {whom[agreement.scope]}"


@_action
def add_agreement(store: HssStore, partner_id: str, scope: str, value: str | None = None) -> dict[str, Any]:
    agreement = _agreement(partner_id, scope, value)
    store.add_agreement(agreement)
    return agreement_dict(agreement)


@_action
def remove_agreement(
    store: HssStore, partner_id: str, scope: str | None = None, value: str | None = None
) -> dict[str, Any]:
    """Remove one agreement of a partner, or all of them (``scope`` None)."""
    if scope is None:
        if value:
            raise _invalid("a value needs a scope (user or group)")
        removed = store.list_agreements(partner_id)
        if not removed:
            raise ProvisioningError(
                NOT_FOUND, f"partner {partner_id!r} has no agreement to remove; list them with: cxgw provision agreement list"
            )
    else:
        removed = [_agreement(partner_id, scope, value)]
    for agreement in removed:
        store.remove_agreement(agreement)
    sentences = [agreement_sentence(a).replace(" may ", " may no longer ", 1) for a in removed]
    return {"result": "; ".join(sentences), "agreements": [agreement_dict(a) for a in removed]}


@_action
def list_agreements(store: HssStore, partner_id: str | None = None) -> list[dict[str, Any]]:
    return [agreement_dict(a) for a in store.list_agreements(partner_id or None)]


# -- allocation policies and pools -----------------------------------------------------------------


@_action
def set_policy(
    store: HssStore,
    direction: str,
    mode: str = "random",
    impi_pattern: str | None = None,
    impu_pattern: str | None = None,
    ttl_seconds: int | None = None,
    rotate: bool = False,
) -> dict[str, Any]:
    policy = AllocationPolicy(_direction(direction), mode, impi_pattern, impu_pattern, ttl_seconds, rotate)
    store.set_policy(policy)
    return policy_dict(policy)


@_action
def show_policy(store: HssStore, direction: str) -> dict[str, Any]:
    """The policy of a direction; not_found (with the command that sets one) when none is."""
    try:
        return policy_dict(store.get_policy(_direction(direction)))
    except NoAllocationPolicy as error:
        raise ProvisioningError(NOT_FOUND, str(error), type(error).__name__) from None


@_action
def list_policies(store: HssStore) -> list[dict[str, Any]]:
    policies = []
    for direction in DIRECTIONS:
        try:
            policies.append(policy_dict(store.get_policy(direction)))
        except NoAllocationPolicy:
            continue
    return policies


@_action
def add_to_pool(
    store: HssStore,
    direction: str,
    pairs: Iterable[tuple[str, str]] = (),
    *,
    first: int | None = None,
    last: int | None = None,
    impi_pattern: str | None = None,
    impu_pattern: str | None = None,
    width: int = 0,
) -> dict[str, Any]:
    """Load (IMPI, IMPU) pairs, and/or a range from patterns with ``{n}``, into a pool."""
    check_direction(direction)
    entries = [tuple(pair) for pair in pairs]
    if any(len(pair) != 2 or not all(isinstance(x, str) for x in pair) for pair in entries):
        raise _invalid("pool pairs are [IMPI, IMPU] pairs of strings")
    if first is not None or last is not None:
        if first is None or last is None or not (impi_pattern and impu_pattern):
            raise _invalid("a range needs first, last, and an IMPI and an IMPU pattern with {n}")
        entries += expand_range(impi_pattern, impu_pattern, first, last, width)
    if not entries:
        raise _invalid("nothing to add: give IMPI/IMPU pairs or a range (first, last, patterns with {n})")
    added = store.add_to_pool(direction, entries)  # type: ignore[arg-type]
    free, used = store.pool_status(direction)
    return {
        "direction": direction, "added": added, "free": free, "used": used,
        "result": f"added {added} to the {direction} pool ({free} free, {used} used)",
    }  # fmt: skip


@_action
def pool_status(store: HssStore, direction: str) -> dict[str, Any]:
    free, used = store.pool_status(_direction(direction))
    return {"direction": direction, "free": free, "used": used}
