"""`cxgw migrate`: set up a user's migration to a partner system, TR 23.781 steps 1-13.

    cxgw migrate --db primary.sqlite --partners partners.toml alice@primary.example --partner partner-a
    cxgw migrate --db primary.sqlite --partners partners.toml alice@primary.example --location 48.85,2.35

It plays the primary configuration management server (gateway.migration.flow): the
user's authorisation and the partner's choice, outbound identities from the primary SIP
database (``--db``), the access request to the partner's provisioning API (the partners
file says where and with which token), and prints the UE's configuration for the partner
system (step 13). On failure it prints one line and undoes what it created. Exit codes:
0 migrated, 1 the primary SIP database failed, 2 bad command line or partners file,
3 the user may not migrate, 4 no such partner, 5 the partner did not grant access
(docs/migration.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from gateway.migration.coverage import Location
from gateway.migration.flow import Event, Exit, MigrationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("impi", help="the user's real IMPI in the primary system, e.g. alice@primary.example")
    parser.add_argument("--impu", help="the user's IMPU to migrate (default: the first of their implicit set)")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--partner", metavar="ID", help="the partner system, by its id in the partners file")
    choice.add_argument("--location", metavar="LAT,LON", type=_location,
                        help="the UE's location in degrees: the partner whose coverage area holds it")
    parser.add_argument("--db", default=os.environ.get("CXGW_DB"),
                        help="the primary SIP database: SQLite file or postgresql:// URL ($CXGW_DB)")
    parser.add_argument("--partners", required=True, metavar="FILE",
                        help="TOML file: our realm and the partner systems (API URL, token, CA, areas)")
    parser.add_argument("--master-key-file", help="hex AES-256 key protecting K/OPc at rest ($CXGW_MASTER_KEY)")
    parser.add_argument("--ue-config", metavar="FILE", help="also write the UE configuration (step 13) to FILE")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _location(text: str) -> Location:
    try:
        latitude, longitude = (float(part) for part in text.split(","))
        return Location(latitude, longitude)
    except ValueError as error:
        detail = str(error) if "latitude" in str(error) or "longitude" in str(error) else "give LAT,LON in degrees"
        raise argparse.ArgumentTypeError(f"{text!r}: {detail}, e.g. 48.85,2.35") from None


def run(args: argparse.Namespace) -> int:
    events: list[Event] = []

    def show(event: Event) -> None:
        events.append(event)
        if not args.json:
            print(f"[{event.step:>5}] {event.text}", flush=True)

    try:
        configuration = migrate(args, show)
    except MigrationError as error:
        if args.json:
            print(json.dumps({"error": {"step": error.step, "exit_code": int(error.exit_code), "message": str(error)},
                              "steps": [{"step": e.step, "text": e.text} for e in events]}))
        print(f"cxgw migrate: {error}", file=sys.stderr)
        return int(error.exit_code)
    if args.json:
        print(json.dumps({"result": "migrated", "ue_configuration": configuration,
                          "steps": [{"step": e.step, "text": e.text} for e in events]}))
    else:
        print(json.dumps(configuration, indent=2))
    return int(Exit.OK)


def migrate(args: argparse.Namespace, show: Any) -> dict[str, Any]:
    """Open the store and the partners file, run steps 1-13, write the UE configuration."""
    from gateway.migration.client import HttpsPartnerAccess
    from gateway.migration.directory import DirectoryError, load_directory
    from gateway.migration.flow import PrimaryCm
    from hss_store.errors import StoreError
    from hss_store.keywrap import MasterKey
    from hss_store.operations import open_for_provisioning

    if not args.db:
        raise MigrationError("1", Exit.USAGE, "no primary SIP database given; pass --db PATH or postgresql://... "
                             "(or set $CXGW_DB)")
    try:
        directory = load_directory(args.partners)
    except DirectoryError as error:
        raise MigrationError("1", Exit.USAGE, str(error)) from None
    try:
        master_key = MasterKey.from_file(args.master_key_file) if args.master_key_file else MasterKey.from_environment()
        store = open_for_provisioning(args.db, master_key=master_key)  # an existing store only
    except StoreError as error:
        raise MigrationError("1", Exit.STORE, f"the primary SIP database {args.db}: {error}") from None
    with store:
        cm = PrimaryCm(store, directory, HttpsPartnerAccess(), on_event=show)
        migration = cm.migrate(args.impi, args.impu, partner_id=args.partner, location=args.location)
        configuration = migration.ue_configuration()
        if args.ue_config:
            try:
                with open(args.ue_config, "w", encoding="utf-8") as file:
                    json.dump(configuration, file, indent=2)
            except OSError as error:  # step 13 not delivered: undo steps 4-12
                cm.fail(migration, MigrationError("13", Exit.USAGE, f"cannot write the UE configuration to "
                                                  f"{args.ue_config} ({error.strerror}); nothing was kept"))
    return configuration

