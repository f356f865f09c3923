"""`cxgw provision`: subscribers, migration bindings, agreements, allocation policies, pools.

    cxgw provision --db hss.db init
    cxgw provision --db hss.db subscriber add alice@ims.example.net \\
        --impu sip:alice@ims.example.net --k 465b... --opc cd63...
    cxgw provision --db postgresql://hss@db/hss binding show mig-x@partner.example --json

``--db`` is a SQLite path or a ``postgresql://`` URL (default ``$CXGW_DB``); a SQLite file
that does not exist is created only by ``init`` or with ``--create``, and commands that only
read open it read-only. Output is for people unless ``--json`` (accepted before or after
the subcommand). Errors print one line naming the problem and the fix, exit 1.

Every action is a function of :mod:`hss_store.operations`, which the provisioning API
calls too: this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_ERROR = 1

BINDING_HELP = """\
A migrated user's identities form a chain (TR 23.781 solution 2):

  real IMPI/IMPU  --(primary, steps 4-6)-->  outbound IMPI/IMPU  --(partner, steps 9-11)-->  inbound IMPI/IMPU
  (the user's own,                           (given to one partner;                        (of the partner's domain;
   in the primary HSS)                        allocate-outbound)                            allocate-inbound)

The partner's S-CSCF knows only the inbound identities; the partner gateway translates them
to the outbound ones, and the primary gateway the outbound ones to the real ones. show, revoke
and list work on both directions (--direction inbound|outbound|both, default both); show also
finds every binding of a user by its real (or primary) identity, revoked ones included.
"""


def _common(json_only: bool = False) -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand (SUPPRESS: the inner parser does not
    overwrite what the outer one set)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    if not json_only:
        parent.add_argument("--create", action="store_true", default=argparse.SUPPRESS,
                            help="create the SQLite file if it does not exist")  # fmt: skip
    return parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0] if __doc__ else None
    parser.add_argument("--db", default=os.environ.get("CXGW_DB"), help="SQLite file or postgresql:// URL ($CXGW_DB)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--create", action="store_true", help="create the SQLite file if it does not exist")
    parser.add_argument("--master-key-file", help="hex AES-256 key protecting K/OPc at rest ($CXGW_MASTER_KEY)")
    common = [_common()]
    groups = parser.add_subparsers(dest="group", metavar="OBJECT", required=True)

    def leaf(sub: Any, name: str, handler: Callable[..., int], text: str, *, writes: bool, **kw: Any) -> Any:
        p = sub.add_parser(name, help=text, description=kw.pop("description", text), parents=common, **kw)
        p.set_defaults(_handler=handler, _writes=writes)
        return p

    p = groups.add_parser("init", help="create an empty store (SQLite file or PostgreSQL schema)", parents=common,
                          description="Create the store's tables in a new SQLite file or a PostgreSQL database.")  # fmt: skip
    p.set_defaults(_handler=_init, _writes=True, _creates=True)

    sub = groups.add_parser("subscriber", parents=common, help="HSS subscribers (IMPI, IMPUs, K/OPc)",
                            description="Subscribers of the primary SIP database (the hss role).")  # fmt: skip
    sub = sub.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = leaf(sub, "add", _subscriber_add, "add a subscriber", writes=True)
    p.add_argument("impi", help="private identity, user@realm")
    p.add_argument("--impu", action="append", required=True, help="public identity (repeat for the implicit set)")
    p.add_argument("--k", required=True, help="K, 32 hex digits")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--opc", help="OPc, 32 hex digits")
    key.add_argument("--op", help="OP, 32 hex digits (OPc is derived and stored)")
    p.add_argument("--amf", default="8000", help="AMF, 4 hex digits (default 8000)")
    p.add_argument("--sqn", type=int, default=0, help="last SQN issued (default 0)")
    p.add_argument("--scheme", action="append", help="allowed SIP-Authentication-Scheme (default Digest-AKAv1-MD5)")
    p.add_argument("--group", action="append", default=[], help="group, for agreements by group")
    p = leaf(sub, "show", _subscriber_show, "show a subscriber", writes=False)
    p.add_argument("impi", help="private identity")
    p.add_argument("--show-keys", action="store_true", help="print K and OPc too")
    p = leaf(sub, "list", _subscriber_list, "list subscribers by IMPI", writes=False)
    _paging(p)
    p = leaf(sub, "remove", _subscriber_remove, "remove a subscriber", writes=True)
    p.add_argument("impi", help="private identity")
    p = leaf(sub, "import", _subscriber_import, "import subscribers from a CSV file", writes=True,
             description="Import subscribers from CSV. Header: impi,impus,k,opc (or op) and optionally "
                         "amf,sqn,schemes,groups. Delimiter , ; or tab; UTF-8 (BOM or not), UTF-16 with BOM, "
                         "or Latin-1. Lists (impus, schemes, groups) are separated by spaces, or by ';' "
                         "in a ,-delimited file. Bad rows are reported by line and skipped.")  # fmt: skip
    p.add_argument("csv_file", help="the CSV file")

    bind = groups.add_parser("binding", parents=common, help="migration bindings (real -> outbound -> inbound identities)",
                             description=BINDING_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    bind = bind.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = leaf(bind, "allocate-outbound", _allocate_outbound, "primary side, steps 4-6: outbound identities for a "
             "user and a partner", writes=True)  # fmt: skip
    p.add_argument("--impi", required=True, help="the user's real IMPI")
    p.add_argument("--impu", required=True, help="the user's real IMPU")
    p.add_argument("--partner", required=True, help="partner system id (as in its agreement)")
    p.add_argument("--rotate", action="store_true", default=None, help="replace an existing binding")
    p = leaf(bind, "allocate-inbound", _allocate_inbound, "partner side, steps 9-11: inbound identities for the "
             "outbound identities a primary gave", writes=True)  # fmt: skip
    p.add_argument("--primary-realm", required=True, help="realm of the primary SIP database")
    p.add_argument("--primary-host", help="Diameter host of the primary (its gateway), if one is meant")
    p.add_argument("--impi", required=True, help="the user's outbound IMPI (from the primary)")
    p.add_argument("--impu", required=True, help="the user's outbound IMPU (from the primary)")
    p.add_argument("--rotate", action="store_true", default=None, help="replace an existing binding")
    p = leaf(bind, "show", _binding_show, "every binding an identity names: a migration IMPI/IMPU of either "
             "direction, or a user's real identity", writes=False)  # fmt: skip
    p.add_argument("identity", help="migration IMPI or IMPU, or the user's real/primary IMPI or IMPU")
    _direction(p)
    p = leaf(bind, "revoke", _binding_revoke, "revoke the binding of a migration IMPI (a registered user is "
             "de-registered by the running gateway)", writes=True)  # fmt: skip
    p.add_argument("impi", help="the migration IMPI (inbound or outbound)")
    _direction(p)
    p = leaf(bind, "list", _binding_list, "list bindings, revoked and expired ones with their state", writes=False)
    _direction(p)
    _paging(p)

    agr = groups.add_parser("agreement", parents=common, help="migration agreements: which partner may migrate whom",
                            description="Agreements (primary side): a partner may migrate every user, one "
                                        "user, or the users of a group.")  # fmt: skip
    agr = agr.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler in (("add", _agreement_add), ("remove", _agreement_remove)):
        p = leaf(agr, name, handler, f"{name} an agreement", writes=True)
        p.add_argument("partner", help="partner system id")
        scope = p.add_mutually_exclusive_group(required=name == "add")
        scope.add_argument("--all", action="store_true", help="every user")
        scope.add_argument("--user", help="one user, by real IMPI")
        scope.add_argument("--group", help="a group of users")
        if name == "remove":
            scope.add_argument("--every", action="store_true", help="every agreement of this partner")
    p = leaf(agr, "list", _agreement_list, "list agreements", writes=False)
    p.add_argument("partner", nargs="?", help="only this partner's")

    pol = groups.add_parser("policy", parents=common, help="how migration identities are allocated",
                            description="Allocation policy of a direction: random identities from patterns "
                                        "with {random}, or entries of a pool.")  # fmt: skip
    pol = pol.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = leaf(pol, "set", _policy_set, "set how to allocate identities of a direction", writes=True)
    p.add_argument("direction", choices=("inbound", "outbound"), help="inbound (partner) or outbound (primary)")
    p.add_argument("--pool", action="store_true", help="take identities from the pool")
    p.add_argument("--impi-pattern", help="e.g. 'mig-{random}@partner.example'")
    p.add_argument("--impu-pattern", help="e.g. 'sip:mig-{random}@partner.example'")
    p.add_argument("--ttl", type=int, help="binding lifetime in seconds")
    p.add_argument("--rotate", action="store_true", help="a repeated request replaces its binding")
    p = leaf(pol, "show", _policy_show, "show the policy of a direction", writes=False)
    p.add_argument("direction", choices=("inbound", "outbound"), help="inbound (partner) or outbound (primary)")

    pool = groups.add_parser("pool", parents=common, help="pools of migration identities",
                             description="Pools: (IMPI, IMPU) pairs loaded beforehand, each handed out once.")  # fmt: skip
    pool = pool.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = leaf(pool, "add", _pool_add, "load identities into a pool", writes=True)
    p.add_argument("direction", choices=("inbound", "outbound"), help="inbound (partner) or outbound (primary)")
    p.add_argument("--pair", nargs=2, action="append", default=[], metavar=("IMPI", "IMPU"), help="one entry (repeat)")
    p.add_argument("--range", nargs=2, type=int, metavar=("FIRST", "LAST"), help="with --impi-pattern/--impu-pattern using {n}")
    p.add_argument("--impi-pattern", help="e.g. 'mig{n}@partner.example'")
    p.add_argument("--impu-pattern", help="e.g. 'sip:mig{n}@partner.example'")
    p.add_argument("--width", type=int, default=0, help="zero-pad {n} to this width")
    p = leaf(pool, "status", _pool_status, "free and used entries of a pool", writes=False)
    p.add_argument("direction", choices=("inbound", "outbound"), help="inbound (partner) or outbound (primary)")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--after", help="start after this IMPI")
    parser.add_argument("--limit", type=int, default=100, help="rows per page (1-1000, default 100)")


def _direction(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direction", choices=("inbound", "outbound", "both"), default="both",
                        help="which bindings (default both)")  # fmt: skip


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

    def rows(self, rows: list[dict[str, Any]], columns: list[str], none: str) -> None:
        if self.as_json:
            print(json.dumps(rows))
            return
        if not rows:
            print(none)
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


# -- handlers: arguments -> operations -> output -----------------------------------------------------

ops: Any = None  # hss_store.operations, imported in run()


def _init(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.message(f"store ready at {args.db} (schema version {store.schema_version()})", schema_version=store.schema_version())
    return 0


def _subscriber_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.add_subscriber(store, args.impi, args.impu, args.k, opc=args.opc, op=args.op, amf=args.amf,
                                  sqn=args.sqn, schemes=args.scheme, groups=args.group))  # fmt: skip
    return 0


def _subscriber_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.show_subscriber(store, args.impi, show_keys=args.show_keys))
    return 0


def _subscriber_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    rows = ops.list_subscribers(store, after=args.after, limit=args.limit)
    out.rows(rows, ["impi", "impus", "sqn", "schemes", "groups"], "no subscribers")
    return 0


def _subscriber_remove(store: Any, args: argparse.Namespace, out: Output) -> int:
    done = ops.remove_subscriber(store, args.impi)
    out.message(done.pop("result"), **done)
    return 0


def _subscriber_import(store: Any, args: argparse.Namespace, out: Output) -> int:
    done = ops.import_subscribers(store, args.csv_file)
    for error in done["errors"]:
        print(f"error: {error}", file=sys.stderr)
    out.message(done.pop("result"), **done)
    return EXIT_ERROR if done["errors"] else 0


def _allocate_outbound(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.allocate_outbound(store, args.impi, args.impu, args.partner, rotate=args.rotate))
    return 0


def _allocate_inbound(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.allocate_inbound(store, args.primary_realm, args.impi, args.impu,
                                    primary_host=args.primary_host, rotate=args.rotate))  # fmt: skip
    return 0


def _binding_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    found = ops.show_bindings(store, args.identity, direction=args.direction)
    if out.as_json:  # as the API's GET /v1/bindings/{identity}: always a list
        print(json.dumps({"bindings": found}))
        return 0
    for i, binding in enumerate(found):
        if i:
            print()
        out.record(binding)
    return 0


def _binding_revoke(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.revoke_binding(store, args.impi, direction=args.direction))
    return 0


BINDING_COLUMNS = {
    "inbound": ["inbound_impi", "inbound_impu", "primary_realm", "primary_impi", "primary_impu", "state", "expires_at"],
    "outbound": ["outbound_impi", "outbound_impu", "real_impi", "real_impu", "partner_id", "state", "expires_at"],
}


def _binding_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    rows = ops.list_bindings(store, direction=args.direction, after=args.after, limit=args.limit)
    if out.as_json:
        print(json.dumps(rows))
        return 0
    directions = ("outbound", "inbound") if args.direction == "both" else (args.direction,)
    for i, direction in enumerate(directions):
        if i:
            print()
        if len(directions) > 1:
            print(f"{direction}:")
        out.rows([r for r in rows if r["direction"] == direction], BINDING_COLUMNS[direction], f"no {direction} bindings")
    return 0


def _scope(args: argparse.Namespace) -> tuple[str | None, str]:
    if args.all:
        return "all", ""
    if args.user:
        return "user", args.user
    if args.group:
        return "group", args.group
    return None, ""


def _agreement_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    from hss_store.records import Agreement

    scope, value = _scope(args)
    added = ops.add_agreement(store, args.partner, scope, value)
    out.message(ops.agreement_sentence(Agreement(**added)), **added)
    return 0


def _agreement_remove(store: Any, args: argparse.Namespace, out: Output) -> int:
    scope, value = _scope(args)
    if scope is None and not args.every:
        from hss_store.operations import INVALID_ARGUMENT, ProvisioningError

        raise ProvisioningError(INVALID_ARGUMENT, "say which agreement: --all, --user IMPI, --group NAME, or --every "
                                                  "for every agreement of this partner")  # fmt: skip
    done = ops.remove_agreement(store, args.partner, scope, value)
    out.message(done.pop("result"), **done)
    return 0


def _agreement_list(store: Any, args: argparse.Namespace, out: Output) -> int:
    rows = ops.list_agreements(store, args.partner)
    none = f"partner {args.partner} has no agreement" if args.partner else "no agreements"
    out.rows(rows, ["partner_id", "scope", "value"], none)
    return 0


def _policy_set(store: Any, args: argparse.Namespace, out: Output) -> int:
    mode = "pool" if args.pool else "random"
    out.record(ops.set_policy(store, args.direction, mode, args.impi_pattern, args.impu_pattern, args.ttl, args.rotate))
    return 0


def _policy_show(store: Any, args: argparse.Namespace, out: Output) -> int:
    policies = {p["direction"]: p for p in ops.list_policies(store)}
    if args.direction in policies:
        out.record(policies[args.direction])
    else:  # not an error: the answer to "which policy?" is "none yet"
        out.message(f"no {args.direction} allocation policy is set; set one with: cxgw provision policy set "
                    f"{args.direction} --impi-pattern ... --impu-pattern ... (or --pool)",
                    direction=args.direction, policy=None)  # fmt: skip
    return 0


def _pool_add(store: Any, args: argparse.Namespace, out: Output) -> int:
    first, last = args.range if args.range else (None, None)
    done = ops.add_to_pool(store, args.direction, args.pair, first=first, last=last, impi_pattern=args.impi_pattern,
                           impu_pattern=args.impu_pattern, width=args.width)  # fmt: skip
    out.message(done.pop("result"), **done)
    return 0


def _pool_status(store: Any, args: argparse.Namespace, out: Output) -> int:
    out.record(ops.pool_status(store, args.direction))
    return 0


# -- entry point --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    global ops
    from hss_store import operations
    from hss_store.errors import StoreError
    from hss_store.keywrap import MasterKey

    ops = operations
    as_json = bool(getattr(args, "json", False))
    out = Output(as_json)
    handler: Callable[[Any, argparse.Namespace, Output], int] = args._handler
    try:
        master_key = MasterKey.from_file(args.master_key_file) if args.master_key_file else MasterKey.from_environment()
        store = operations.open_for_provisioning(
            args.db, create=bool(getattr(args, "create", False) or getattr(args, "_creates", False)),
            read_only=not args._writes, master_key=master_key,
        )  # fmt: skip
        with store:
            return handler(store, args, out)
    except StoreError as exc:
        code = operations.code_of(exc)
        if as_json:
            kind = getattr(exc, "kind", type(exc).__name__)
            print(json.dumps({"error": {"code": code, "type": kind, "message": str(exc)}}))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
