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


def command_filter(values: list[str]) -> set[int] | None:
    """Command-Codes of ``--command`` values (MAR, MAR/MAA, 303); None after printing
    what is wrong."""
    codes = set()
    for value in values:
        code = command_code(value)
        if code is None:
            print(f"--command {value!r} is not a Diameter command; use a name such as MAR, MAR/MAA or a code such as 303",
                  file=sys.stderr)
            return None
        codes.add(code)
    return codes


def open_capture(path: str) -> tuple[Any, list[Any]] | None:
    """The reader of ``path`` and its messages, read to the end; None after printing a
    one-line error (no such file, not a capture)."""
    from captures.reader import CaptureReader
    from captures.reader.files import NotACapture

    try:
        reader = CaptureReader(path)
        messages = list(reader)
    except FileNotFoundError:
        print(f"{path}: no such file", file=sys.stderr)
        return None
    except IsADirectoryError:
        print(f"{path}: is a folder; give a .pcap or .pcapng file", file=sys.stderr)
        return None
    except PermissionError:
        print(f"{path}: not readable (permission denied)", file=sys.stderr)
        return None
    except NotACapture as error:  # names the file and what it starts with
        print(f"{error}; give a capture made by tcpdump, Wireshark or cxgw gateway", file=sys.stderr)
        return None
    except (OSError, ValueError) as error:
        print(f"{path}: cannot be read as a capture: {error}", file=sys.stderr)
        return None
    return reader, messages


__all__ = ["add_arguments", "command_filter", "open_capture", "run"]
