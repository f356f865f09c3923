"""`cxgw capture show|replay`: inspect a capture, or replay its requests against a node.

    cxgw capture show FILE [--tree | --ladder | --stats] [--command MAR] [--stream N]
    cxgw capture replay FILE --target HOST:PORT [--json] [--map FILE] ...

The subcommands live in captures.show and captures.replay (docs/captures.md,
"Inspecting and replaying"); what both need to open a file is here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from captures.recorder import command_code

SUBCOMMANDS = {
    "show": ("captures.show", "print the Diameter messages of a capture: lines, trees, a ladder or statistics"),
    "replay": ("captures.replay", "re-send a capture's requests to a node and compare its answers with the recorded ones"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    import importlib

    sub = parser.add_subparsers(dest="capture_command", metavar="SUBCOMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(subparser)
        subparser.set_defaults(_capture_module=module)


def run(args: argparse.Namespace) -> int:
    return int(args._capture_module.run(args) or 0)


def command_filter(values: list[str], *, quiet: bool = False) -> set[int] | None:
    """Command-Codes of ``--command`` values (MAR, MAR/MAA, 303); None when one is not a
    command (after saying so on standard error, unless ``quiet``)."""
    codes = set()
    for value in values:
        code = command_code(value)
        if code is None:
            if not quiet:
                print(f"--command {value!r} is not a Diameter command; use a name such as MAR, MAR/MAA or a code "
                      "such as 303", file=sys.stderr)
            return None
        codes.add(code)
    return codes


def open_capture(path: str, *, quiet: bool = False) -> tuple[Any, list[Any]] | str:
    """The reader of ``path`` and its messages, read to the end; else the one line that
    says why not (no such file, not a capture), printed on standard error unless ``quiet``."""
    from captures.reader import CaptureReader
    from captures.reader.files import NotACapture

    try:
        reader = CaptureReader(path)
        return reader, list(reader)
    except FileNotFoundError:
        problem = f"{path}: no such file"
    except IsADirectoryError:
        problem = f"{path}: is a folder; give a .pcap or .pcapng file"
    except PermissionError:
        problem = f"{path}: not readable (permission denied)"
    except NotACapture as error:  # names the file and what it starts with
        problem = f"{error}; give a capture made by tcpdump, Wireshark or cxgw gateway"
    except (OSError, ValueError) as error:
        problem = f"{path}: cannot be read as a capture: {error}"
    if not quiet:
        print(problem, file=sys.stderr)
    return problem


__all__ = ["add_arguments", "command_filter", "open_capture", "run"]
