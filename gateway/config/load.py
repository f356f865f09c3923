"""Loading a configuration file and comparing two for a reload (see gateway.config)."""

from __future__ import annotations

import dataclasses
import os
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.checks import Checker
from gateway.config.schema import ConfigError, GatewayConfig
from gateway.config.sections import _Parser


def load_config(path: str | os.PathLike[str], *, now: float | None = None) -> GatewayConfig:
    """Read and check a TOML configuration file; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [f"{path}: cannot read the configuration ({exc}); check the path"]
        ) from exc
    return parse_config(text, str(path), base_dir=path.parent, now=now)


def parse_config(
    text: str,
    source: str = "<string>",
    *,
    base_dir: str | os.PathLike[str] | None = None,
    now: float | None = None,
) -> GatewayConfig:
    """Parse and check TOML text; relative paths resolve against ``base_dir`` (default cwd).

    ``now`` (seconds since the epoch) seeds the default Origin-State-Id.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML ({exc}); fix the syntax"]) from exc
    check = Checker(source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    config = _Parser(check, base, time.time() if now is None else now).gateway(data)
    if check.errors or config is None:
        raise ConfigError(check.errors)
    return config


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """What a reload changes: peers by host, routes by (realm, Application-Id)."""

    peers_added: tuple[str, ...] = ()
    peers_removed: tuple[str, ...] = ()
    peers_changed: tuple[str, ...] = ()
    routes_added: tuple[tuple[str, int], ...] = ()
    routes_removed: tuple[tuple[str, int], ...] = ()
    routes_changed: tuple[tuple[str, int], ...] = ()
    sections_changed: tuple[str, ...] = ()  # other top-level sections that differ

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def restart_required(self) -> tuple[str, ...]:
        """Changed sections a running node cannot apply (sockets, identity and roles, TLS,
        the store and the Cx applications built on it)."""
        return tuple(s for s in self.sections_changed if s in RESTART_SECTIONS)


RESTART_SECTIONS = frozenset(
    {"node", "listen", "tls", "metrics", "store", "hss", "partner", "primary", "capture", "provisioning"}
)


def diff(old: GatewayConfig, new: GatewayConfig) -> ConfigDiff:
    """Compare two configurations (for SIGHUP reload).

    Hosts compare case-insensitively and are reported as spelled in ``new`` (``old`` for
    removals). A derived Origin-State-Id is not a change: it is fixed for the process.
    """
    peers = _diff_keyed(
        {p.host.lower(): p for p in old.peers}, {p.host.lower(): p for p in new.peers}
    )
    routes = _diff_keyed({r.key: r for r in old.routes}, {r.key: r for r in new.routes})
    sections = []
    for name in (
        "node",
        "listen",
        "tls",
        "timers",
        "limits",
        "unknown_peers",
        "metrics",
        "logging",
        "store",
        "hss",
        "partner",
        "primary",
        "capture",
        "provisioning",
    ):
        before, after = getattr(old, name), getattr(new, name)
        if name == "node":
            before = dataclasses.replace(before, origin_state_id=0)
            after = dataclasses.replace(after, origin_state_id=0)
        if before != after:
            sections.append(name)
    return ConfigDiff(
        peers_added=tuple(p.host for p in peers[0]),
        peers_removed=tuple(p.host for p in peers[1]),
        peers_changed=tuple(p.host for p in peers[2]),
        routes_added=tuple(r.key for r in routes[0]),
        routes_removed=tuple(r.key for r in routes[1]),
        routes_changed=tuple(r.key for r in routes[2]),
        sections_changed=tuple(sections),
    )


def _diff_keyed(
    old: Mapping[Any, Any], new: Mapping[Any, Any]
) -> tuple[list[Any], list[Any], list[Any]]:
    added = [value for key, value in new.items() if key not in old]
    removed = [value for key, value in old.items() if key not in new]
    changed = [value for key, value in new.items() if key in old and old[key] != value]
    return added, removed, changed
