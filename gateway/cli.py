"""`cxgw`: one console script, one subcommand per job.

Each subcommand lives in its own module, exposing ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so
``cxgw decode`` does not pay for Twisted or a database driver.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("cx_codec.cli", "print a Diameter message as a tree, with its validation verdict"),
    "provision": ("hss_store.cli", "manage subscribers, migration bindings and agreements"),
    "gateway": ("gateway.runner", "run the Diameter node in the foreground (TOML configuration)"),
    "certs": ("gateway.certs", "make lab TLS certificates for Diameter identities (a CA of its own)"),
    "send": ("gateway.send", "send a sample or a hex message to a Diameter peer after CER and print the answer"),
    "capture": ("captures.cli", "show, inspect and replay pcap/pcapng captures of Diameter traffic"),
    "migrate": ("gateway.migration.cli", "play both configuration management servers of a migration (steps 1-13)"),
    "demo": ("gateway.demo", "run the whole migration, steps 1 to 25, on two cores over loopback"),
}


def _version() -> str:
    try:
        return importlib.metadata.version("cx-gateway")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree, not installed
        return "unknown (not installed)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported and configured."""
    parser = argparse.ArgumentParser(
        prog="cxgw", description="Diameter Cx interconnect gateway for migrated MC users."
    )
    parser.add_argument("--version", action="version", version=f"cxgw {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(subparser)
            subparser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
