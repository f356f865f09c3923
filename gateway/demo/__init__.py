"""`cxgw demo`: the whole migration of TR 23.781 solution 2, steps 1 to 25, on two cores over loopback.

    cxgw demo                 # runs, prints every step, exits 0 if each behaved as specified
    cxgw demo --keep-running  # then leaves both cores up until Ctrl-C

The steps are in ``gateway.demo.run``; docs/migration.md explains what each one shows.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR",
                        help="where to write configurations, stores, logs and the recording "
                             "(default: a new temporary folder, kept)")
    parser.add_argument("--interconnect", choices=("tcp", "tls"), default="tcp",
                        help="the Diameter interconnect between the cores: tcp (default) or tls (mutual, RFC 6733 §13)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave both cores up after the steps and print how to reach them, until Ctrl-C")


def run(args: argparse.Namespace) -> int:
    from gateway.demo.run import main

    return main(args)
