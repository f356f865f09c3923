"""`cxgw provision`: subscribers, migration bindings, agreements, allocation policies, pools.

    cxgw provision --db hss.db subscriber add alice@ims.example.net \\
        --impu sip:alice@ims.example.net --k 465b... --opc cd63...
    cxgw provision --db postgresql://hss@db/hss --json binding show mig-x@partner.example

``--db`` is a SQLite path or a ``postgresql://`` URL (default ``$CXGW_DB``). Output is for
people unless ``--json``. Errors print one line naming the problem and the fix, exit 1.
Imports of the store (and psycopg) happen in :func:`run`, not at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_ERROR = 1
PROVISIONING_TIMEOUT = 600.0  # seconds a provisioning call may take on PostgreSQL (the store's default is 2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=os.environ.get("CXGW_DB"), help="SQLite file or postgresql:// URL ($CXGW_DB)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--master-key-file", help="hex AES-256 key protecting K/OPc at rest ($CXGW_MASTER_KEY)")
    groups = parser.add_subparsers(dest="group", metavar="OBJECT", required=True)

    sub = groups.add_parser("subscriber", help="HSS subscribers").add_subparsers(dest="action", required=True)
    p = sub.add_parser("add", help="add a subscriber")
    p.add_argument("impi")
    p.add_argument("--impu", action="append", required=True, help="public identity (repeat for the implicit set)")
    p.add_argument("--k", required=True, help="K, 32 hex digits")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--opc", help="OPc, 32 hex digits")
    key.add_argument("--op", help="OP, 32 hex digits (OPc is derived and stored)")
    p.add_argument("--amf", default="8000", help="AMF, 4 hex digits (default 8000)")
    p.add_argument("--sqn", type=int, default=0, help="last SQN issued (default 0)")
    p.add_argument("--scheme", action="append", help="allowed SIP-Authentication-Scheme (default Digest-AKAv1-MD5)")
    p.add_argument("--group", action="append", default=[], help="group, for agreements by group")
    p.set_defaults(_handler=_subscriber_add)
    p = sub.add_parser("show", help="show a subscriber")
    p.add_argument("impi")
    p.add_argument("--show-keys", action="store_true", help="print K and OPc too")
    p.set_defaults(_handler=_subscriber_show)
    p = sub.add_parser("list", help="list subscribers")
    _paging(p)
    p.set_defaults(_handler=_subscriber_list)
    p = sub.add_parser("remove", help="remove a subscriber")
    p.add_argument("impi")
    p.set_defaults(_handler=_subscriber_remove)
    p = sub.add_parser("import", help="import subscribers from CSV (header: impi,impus,k,opc,op,amf,sqn,schemes,groups)")
    p.add_argument("csv_file")
    p.set_defaults(_handler=_subscriber_import)

    bind = groups.add_parser("binding", help="migration bindings").add_subparsers(dest="action", required=True)
    p = bind.add_parser("allocate-outbound", help="primary side: outbound identities for a user and a partner")
    p.add_argument("--impi", required=True, help="the user's real IMPI")
    p.add_argument("--impu", required=True, help="the user's real IMPU")
    p.add_argument("--partner", required=True, help="partner system id")
    p.add_argument("--rotate", action="store_true", default=None, help="replace an existing binding")
    p.set_defaults(_handler=_allocate_outbound)
    p = bind.add_parser("allocate-inbound", help="partner side: inbound identities for a primary user")
    p.add_argument("--primary-realm", required=True)
    p.add_argument("--primary-host")
    p.add_argument("--impi", required=True, help="the user's primary IMPI")
    p.add_argument("--impu", required=True, help="the user's primary IMPU")
    p.add_argument("--rotate", action="store_true", default=None, help="replace an existing binding")
    p.set_defaults(_handler=_allocate_inbound)
    p = bind.add_parser("show", help="show the binding of a migration IMPI or IMPU (either direction)")
    p.add_argument("identity")
    p.set_defaults(_handler=_binding_show)
    p = bind.add_parser("revoke", help="revoke the binding of a migration IMPI")
    p.add_argument("impi")
    p.add_argument("--direction", choices=("inbound", "outbound"))
    p.set_defaults(_handler=_binding_revoke)
    p = bind.add_parser("list", help="list bindings")
    p.add_argument("--direction", choices=("inbound", "outbound"), required=True)
    _paging(p)
    p.set_defaults(_handler=_binding_list)

    agr = groups.add_parser("agreement", help="migration agreements").add_subparsers(dest="action", required=True)
    for name, handler in (("add", _agreement_add), ("remove", _agreement_remove)):
        p = agr.add_parser(name, help=f"{name} an agreement")
        p.add_argument("partner")
        scope = p.add_mutually_exclusive_group(required=True)
        scope.add_argument("--all", action="store_true", help="every user")
        scope.add_argument("--user", help="one user, by real IMPI")
        scope.add_argument("--group", help="a group of users")
        p.set_defaults(_handler=handler)
    p = agr.add_parser("list", help="list agreements")
    p.add_argument("partner", nargs="?")
    p.set_defaults(_handler=_agreement_list)

    pol = groups.add_parser("policy", help="allocation policies").add_subparsers(dest="action", required=True)
    p = pol.add_parser("set", help="how to allocate identities of a direction")
    p.add_argument("direction", choices=("inbound", "outbound"))
    p.add_argument("--pool", action="store_true", help="take identities from the pool")
    p.add_argument("--impi-pattern", help="e.g. 'mig-{random}@partner.example'")
    p.add_argument("--impu-pattern", help="e.g. 'sip:mig-{random}@partner.example'")
    p.add_argument("--ttl", type=int, help="binding lifetime in seconds")
    p.add_argument("--rotate", action="store_true", help="a repeated request replaces its binding")
    p.set_defaults(_handler=_policy_set)
    p = pol.add_parser("show")
    p.add_argument("direction", choices=("inbound", "outbound"))
    p.set_defaults(_handler=_policy_show)

    pool = groups.add_parser("pool", help="pools of migration identities").add_subparsers(dest="action", required=True)
    p = pool.add_parser("add", help="load identities into a pool")
    p.add_argument("direction", choices=("inbound", "outbound"))
    p.add_argument("--pair", nargs=2, action="append", default=[], metavar=("IMPI", "IMPU"))
    p.add_argument("--range", nargs=2, type=int, metavar=("FIRST", "LAST"), help="with --impi-pattern/--impu-pattern using {n}")
    p.add_argument("--impi-pattern")
    p.add_argument("--impu-pattern")
    p.add_argument("--width", type=int, default=0, help="zero-pad {n} to this width")
    p.set_defaults(_handler=_pool_add)
    p = pool.add_parser("status")
    p.add_argument("direction", choices=("inbound", "outbound"))
    p.set_defaults(_handler=_pool_status)


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--after", help="start after this identity")
    parser.add_argument("--limit", type=int, default=100)


# -- output -------------------------------------------------------------------------------------


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def record(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, sort_keys=False))
            return
        width = max(len(k) for k in data)
        for name, value in data.items():
            value = _human(name, value)
            if isinstance(value, list | tuple):
                value = ", ".join(map(str, value)) if value else "-"
            print(f"{name.replace('_', ' '):<{width}}  {'-' if value is None else value}")

    def rows(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if self.as_json:
            print(json.dumps(rows))
            return
        cells = [[_cell(_human(c, r.get(c))) for c in columns] for r in rows]
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
        print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for row in cells:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())

    def message(self, text: str, **data: Any) -> None:
        print(json.dumps({"result": text, **data}) if self.as_json else text)


def _human(name: str, value: Any) -> Any:
    """Timestamps (``*_at``) as UTC ISO 8601 for people; JSON keeps the Unix seconds."""
    if name.endswith("_at") and isinstance(value, int):
        import datetime

        return datetime.datetime.fromtimestamp(value, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _subscriber_dict(sub: Any, show_keys: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "impi": sub.impi, "impus": list(sub.impus), "amf": sub.amf.hex(), "sqn": sub.sqn,
        "schemes": list(sub.schemes), "scscf_name": sub.scscf_name, "groups": list(sub.groups),
    }
    if show_keys:
        data.update(k=sub.k.hex(), opc=sub.opc.hex())
    return data


def _binding_dict(binding: Any) -> dict[str, Any]:
    from hss_store.records import InboundBinding

    if isinstance(binding, InboundBinding):
        return {
            "direction": "inbound", "inbound_impi": binding.inbound_impi, "inbound_impu": binding.inbound_impu,
            "primary_realm": binding.primary_realm, "primary_host": binding.primary_host,
            "primary_impi": binding.primary_impi, "primary_impu": binding.primary_impu,
            "created_at": binding.created_at, "expires_at": binding.expires_at, "revoked_at": binding.revoked_at,
        }
    return {
        "direction": "outbound", "outbound_impi": binding.outbound_impi, "outbound_impu": binding.outbound_impu,
        "real_impi": binding.real_impi, "real_impu": binding.real_impu, "partner_id": binding.partner_id,
        "created_at": binding.created_at, "expires_at": binding.expires_at, "revoked_at": binding.revoked_at,
    }


# -- handlers -----------------------------------------------------------------------------------


def _subscriber_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.records import DEFAULT_SCHEMES, Subscriber

    sub = Subscriber.new(
        args.impi, args.impu, args.k, opc=args.opc, op=args.op, amf=args.amf, sqn=args.sqn,
        schemes=args.scheme or DEFAULT_SCHEMES, groups=args.group,
    )
    out.record(_subscriber_dict(store.add_subscriber(sub)))
    return 0


def _subscriber_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(_subscriber_dict(store.get_subscriber(args.impi), args.show_keys))
    return 0


def _subscriber_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    rows = [_subscriber_dict(s) for s in store.list_subscribers(after=args.after, limit=args.limit)]
    out.rows(rows, ["impi", "impus", "sqn", "schemes", "groups"])
    return 0


def _subscriber_remove(store: Any, args: argparse.Namespace, out: Output) -> int:
    store.remove_subscriber(args.impi)
    out.message(f"removed {args.impi}", impi=args.impi)
    return 0


def _subscriber_import(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.csv_import import import_subscribers

    added, errors = import_subscribers(store, args.csv_file)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    out.message(f"imported {added} subscribers, {len(errors)} errors", imported=added, errors=errors)
    return EXIT_ERROR if errors else 0


def _allocate_outbound(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(_binding_dict(store.allocate_outbound(args.impi, args.impu, args.partner, rotate=args.rotate)))
    return 0


def _allocate_inbound(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.records import PrimaryDatabase

    primary = PrimaryDatabase(args.primary_realm, args.primary_host)
    out.record(_binding_dict(store.allocate_inbound(primary, args.impi, args.impu, rotate=args.rotate)))
    return 0


def _find_binding(store: Any, identity: str, directions: tuple[str, ...]) -> Any:
    from hss_store.errors import InvalidIdentity, UnknownBinding

    kind = "impi" if "@" in identity and not identity.startswith(("sip:", "sips:", "tel:")) else "impu"
    last: Exception | None = None
    for direction in directions:
        try:
            return getattr(store, f"{direction}_by_{kind}")(identity)
        except (UnknownBinding, InvalidIdentity) as exc:
            if "revoked" in str(exc) or "expired" in str(exc):
                raise
            last = exc
    assert last is not None
    raise last


def _binding_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(_binding_dict(_find_binding(store, args.identity, ("inbound", "outbound"))))
    return 0


def _binding_revoke(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.errors import UnknownBinding

    directions = (args.direction,) if args.direction else ("inbound", "outbound")
    for i, direction in enumerate(directions):
        try:
            out.record(_binding_dict(getattr(store, f"revoke_{direction}")(args.impi)))
            return 0
        except UnknownBinding:
            if i == len(directions) - 1:
                raise
    return EXIT_ERROR


def _binding_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    items = getattr(store, f"list_{args.direction}")(after=args.after, limit=args.limit)
    columns = (
        ["inbound_impi", "inbound_impu", "primary_realm", "primary_impi", "primary_impu", "expires_at", "revoked_at"]
        if args.direction == "inbound"
        else ["outbound_impi", "outbound_impu", "real_impi", "real_impu", "partner_id", "expires_at", "revoked_at"]
    )
    out.rows([_binding_dict(b) for b in items], columns)
    return 0


def _agreement(args: argparse.Namespace) -> Any:
    from hss_store.records import Agreement

    if args.all:
        return Agreement(args.partner, "all")
    return Agreement(args.partner, "user", args.user) if args.user else Agreement(args.partner, "group", args.group)


def _agreement_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    a = _agreement(args)
    store.add_agreement(a)
    out.message(f"partner {a.partner_id} may migrate {a.scope} {a.value}".rstrip(), partner=a.partner_id, scope=a.scope, value=a.value)
    return 0


def _agreement_remove(store: Any, args: argparse.Namespace, out: Output) -> int:
    a = _agreement(args)
    store.remove_agreement(a)
    out.message(f"removed agreement {a.partner_id} {a.scope} {a.value}".rstrip())
    return 0


def _agreement_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    rows = [{"partner": a.partner_id, "scope": a.scope, "value": a.value} for a in store.list_agreements(args.partner)]
    out.rows(rows, ["partner", "scope", "value"])
    return 0


def _policy_dict(p: Any) -> dict[str, Any]:
    return {"direction": p.direction, "mode": p.mode, "impi_pattern": p.impi_pattern, "impu_pattern": p.impu_pattern,
            "ttl_seconds": p.ttl_seconds, "rotate": p.rotate}  # fmt: skip


def _policy_set(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.allocation import AllocationPolicy

    mode = "pool" if args.pool else "random"
    policy = AllocationPolicy(args.direction, mode, args.impi_pattern, args.impu_pattern, args.ttl, args.rotate)
    store.set_policy(policy)
    out.record(_policy_dict(policy))
    return 0


def _policy_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(_policy_dict(store.get_policy(args.direction)))
    return 0


def _pool_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.allocation import expand_range
    from hss_store.errors import InvalidRequest

    pairs = [tuple(p) for p in args.pair]
    if args.range:
        if not (args.impi_pattern and args.impu_pattern):
            raise InvalidRequest("--range needs --impi-pattern and --impu-pattern with {n}")
        pairs += expand_range(args.impi_pattern, args.impu_pattern, args.range[0], args.range[1], args.width)
    if not pairs:
        raise InvalidRequest("give --pair IMPI IMPU (repeatable) or --range FIRST LAST with patterns")
    added = store.add_to_pool(args.direction, pairs)
    free, used = store.pool_status(args.direction)
    out.message(f"added {added} to the {args.direction} pool ({free} free, {used} used)", added=added, free=free, used=used)
    return 0


def _pool_status(store: Any, args: argparse.Namespace, out: Output) -> int:
    free, used = store.pool_status(args.direction)
    out.record({"direction": args.direction, "free": free, "used": used})
    return 0


# -- entry point --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from hss_store import is_postgres_url, open_store
    from hss_store.errors import StoreError
    from hss_store.keywrap import MasterKey

    out = Output(args.json)
    handler: Callable[[Any, argparse.Namespace, Output], int] = args._handler
    try:
        if not args.db:
            from hss_store.errors import InvalidRequest

            raise InvalidRequest("no store given; pass --db PATH.db or --db postgresql://... (or set $CXGW_DB)")
        master_key = MasterKey.from_file(args.master_key_file) if args.master_key_file else MasterKey.from_environment()
        options: dict[str, Any] = {"master_key": master_key}
        if is_postgres_url(args.db):  # bulk loads (pool add) take longer than a Cx call's deadline
            options["timeout"] = PROVISIONING_TIMEOUT
        with open_store(args.db, **options) as store:
            return handler(store, args, out)
    except StoreError as exc:
        if args.json:
            print(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}}))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
