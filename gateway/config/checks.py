"""Typed checks of one TOML key each, collecting every error (see gateway.config)."""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.config.schema import (
    APPLICATIONS,
    DEFAULT_ROUTE_REALM,
    POSTGRES_SCHEMES,
    UINT32_MAX,
    Application,
    RouteTargetConfig,
    application_for,
)

# ---------------------------------------------------------------------------------------
# The checks. Each reads one key of a table, records an error (key path, value, fix) when
# the value is wrong, and returns a fallback so that checking goes on and every error of
# the file is reported at once.

MISSING: Any = object()  # "this key is required"

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# RFC 6733 §4.3.1 DiameterIdentity: an FQDN (a single label such as "localhost" is allowed).
_IDENTITY = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_TOKEN = re.compile(r"[A-Za-z0-9._-]+")  # a partner_id as hss_store keeps it
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def is_diameter_identity(value: str) -> bool:
    """FQDN-shaped printable ASCII, at most 255 characters (RFC 6733 §4.3.1)."""
    return len(value) <= 255 and _IDENTITY.fullmatch(value) is not None


_TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 §2.1 b64token


def read_token(path: Path) -> str:
    """The bearer token in a file (surrounding white space ignored). OSError when the file
    cannot be read; ValueError, saying why, when what it holds cannot be a token."""
    from gateway.config.schema import PROVISIONING_TOKEN_MIN

    data = Path(path).read_bytes()[:4097]
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("holds non-ASCII bytes, not a bearer token") from None
    if not token:
        raise ValueError("is empty")
    if len(token) > 4096 or not _TOKEN68.match(token):
        raise ValueError("holds more than one line of letters, digits and -._~+/ (RFC 6750 b64token)")
    if len(token) < PROVISIONING_TOKEN_MIN:
        raise ValueError(f"holds a token of {len(token)} characters; use {PROVISIONING_TOKEN_MIN} at least")
    return token


def show(value: Any) -> str:
    """A value as it would be written in TOML, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + " }"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class Checker:
    """Collects errors for one source; ``source: path = value problem; fix``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    # -- reporting
    def error(self, text: str) -> None:
        self.errors.append(f"{self.source}: {text}")

    def bad(self, path: str, value: Any, problem: str, fix: str) -> None:
        self.error(f"{path} = {show(value)} {problem}; {fix}")

    def missing(self, path: str, fix: str) -> None:
        self.error(f"{path} is missing; {fix}")

    def wrong_type(self, path: str, value: Any, wanted: str) -> None:
        self.bad(path, value, f"is {_type_name(value)}", f"use {wanted}")

    # -- structure
    def unknown_keys(self, table: Mapping[str, Any], prefix: str, known: Iterable[str]) -> None:
        known = sorted(known)
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(known)}"
            where = f"[{key}]" if not prefix else _join(prefix, key)
            self.error(f"{where} is not a known {'section' if not prefix else 'key'}; {hint}")

    def section(self, data: Mapping[str, Any], name: str, kind: str) -> Any:
        """``[name]`` as a dict, or ``[[name]]`` as a list of dicts; empty when absent."""
        value = data.get(name)
        if kind == "table":
            if value is None:
                return {}
            if isinstance(value, dict):
                return value
            self.wrong_type(name, value, f"a [{name}] table")
            return {}
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong_type(name, value, f"[[{name}]] (an array of tables)")
            return []
        tables = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                tables.append(item)
            else:
                self.wrong_type(f"{name}[{i}]", item, f"a table under [[{name}]]")
        return tables

    def _get(self, t: Mapping[str, Any], prefix: str, key: str, default: Any, fix: str) -> Any:
        if key in t:
            return t[key]
        if default is MISSING:
            self.missing(_join(prefix, key), fix)
        return MISSING

    # -- scalars
    def string(
        self, t: Mapping[str, Any], prefix: str, key: str, default: Any, nonempty: bool = False
    ) -> Any:
        value = self._get(t, prefix, key, default, f'add {key} = "..."')
        if value is MISSING:
            return None if default is MISSING else default
        if not isinstance(value, str):
            self.wrong_type(_join(prefix, key), value, "a string in quotes")
            return None if default is MISSING else default
        if nonempty and not value.strip():
            self.bad(_join(prefix, key), value, "is empty", "give it a value or remove the key")
            return default
        return value

    def choice(
        self, t: Mapping[str, Any], prefix: str, key: str, default: Any, choices: Iterable[str]
    ) -> Any:
        choices = tuple(choices)
        options = ", ".join(f'"{c}"' for c in choices)
        value = self._get(t, prefix, key, default, f"add {key} = one of {options}")
        fallback = None if default is MISSING else default
        if value is MISSING:
            return fallback
        if not isinstance(value, str):
            self.wrong_type(_join(prefix, key), value, f"one of {options}")
            return fallback
        if value.lower() not in choices:
            problem = "is not supported"
            if key == "transport" and value.lower() == "sctp":
                problem = "is not supported (Twisted has no SCTP)"
            self.bad(_join(prefix, key), value, problem, f"use one of {options}")
            return fallback
        return value.lower()

    def identity(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any = MISSING,
        example: str = "host.realm.example",
        allow_wildcard: bool = False,
    ) -> Any:
        value = self._get(t, prefix, key, default, f'add {key} = "{example}"')
        if value is MISSING:
            return None if default is MISSING else default
        return self.identity_item(_join(prefix, key), value, example, allow_wildcard)

    def identity_item(
        self, path: str, value: Any, example: str = "realm.example", allow_wildcard: bool = False
    ) -> str | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, f'a Diameter identity in quotes such as "{example}"')
            return None
        if allow_wildcard and value == DEFAULT_ROUTE_REALM:
            return value
        if not is_diameter_identity(value):
            wildcard = ' or "*" for the default route' if allow_wildcard else ""
            self.bad(
                path,
                value,
                "is not a Diameter identity",
                f"use an FQDN such as \"{example}\" (letters, digits, '-', '.'){wildcard}",
            )
            return None
        return value

    def integer(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any,
        lo: int,
        hi: int | None = None,
    ) -> Any:
        span = f"{lo}-{hi}" if hi is not None else f"{lo} or more"
        value = self._get(t, prefix, key, default, f"add {key} = <integer {span}>")
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(_join(prefix, key), value, f"an integer {span}")
            return default
        if value < lo or (hi is not None and value > hi):
            self.bad(_join(prefix, key), value, "is out of range", f"use {span}")
            return default
        return value

    def port(
        self, t: Mapping[str, Any], prefix: str, key: str, default: int, allow_zero: bool
    ) -> int:
        lo = 0 if allow_zero else 1
        span = f"{lo}-65535" + (" (0: the OS picks a free port)" if allow_zero else "")
        value = t.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(_join(prefix, key), value, f"an integer {span}")
            return default
        if not lo <= value <= 65535:
            self.bad(_join(prefix, key), value, "is not a TCP port", f"use {span}")
            return default
        return value

    def seconds(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: float,
        minimum: float | None = None,
        fix: str | None = None,
    ) -> float:
        """A duration in seconds: > 0, or >= ``minimum`` when given."""
        value = t.get(key, default)
        path = _join(prefix, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(path, value, "a number of seconds")
            return default
        low = value <= 0 if minimum is None else value < minimum
        if not math.isfinite(value) or low:
            bound = "more than 0" if minimum is None else f"at least {minimum}"
            self.bad(path, value, "is not a valid duration", fix or f"use {bound} seconds")
            return default
        return float(value)

    def boolean(self, t: Mapping[str, Any], prefix: str, key: str, default: bool) -> bool:
        value = t.get(key, default)
        if not isinstance(value, bool):
            self.wrong_type(_join(prefix, key), value, "true or false (no quotes)")
            return default
        return value

    def ip(self, t: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
        return self.ip_item(_join(prefix, key), t.get(key, default)) or default

    def ip_item(self, path: str, value: Any) -> str | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, 'an IP address in quotes such as "127.0.0.1"')
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            self.bad(
                path,
                value,
                "is not an IP address",
                'use an IPv4 or IPv6 address such as "127.0.0.1"',
            )
            return None

    def host_or_ip(self, t: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
        value = t.get(key, default)
        path = _join(prefix, key)
        if not isinstance(value, str):
            self.wrong_type(path, value, "an IP address or host name in quotes")
            return default
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(value))
        if not is_diameter_identity(value):
            self.bad(
                path,
                value,
                "is neither an IP address nor a host name",
                'use an address such as "192.0.2.10" or a resolvable name',
            )
            return default
        return value

    # -- applications and arrays
    def application(self, t: Mapping[str, Any], prefix: str, key: str, default: Any) -> Any:
        return self.application_item(_join(prefix, key), t.get(key, default))

    def application_item(self, path: str, value: Any) -> Application | None:
        app = application_for(value) if isinstance(value, str | int) else None
        if app is None:
            known = ", ".join(f'"{name}"' for name in APPLICATIONS)
            if isinstance(value, str | int) and not isinstance(value, bool):
                self.bad(
                    path,
                    value,
                    "is not a known application",
                    f"use {known} or an Application-Id 0-{UINT32_MAX}",
                )
            else:
                self.wrong_type(path, value, f"{known} or an Application-Id")
        return app

    def one_of_item(self, path: str, value: Any, choices: Iterable[str]) -> str | None:
        """A string among ``choices`` (case-insensitive), with a "did you mean" for a typo."""
        choices = tuple(choices)
        options = ", ".join(f'"{c}"' for c in choices)
        if not isinstance(value, str):
            self.wrong_type(path, value, f"one of {options}")
            return None
        if value.lower() in choices:
            return value.lower()
        close = difflib.get_close_matches(value.lower(), choices, n=1)
        hint = f'did you mean "{close[0]}"? ({options})' if close else f"use one of {options}"
        self.bad(path, value, "is not supported", hint)
        return None

    def token_item(self, path: str, value: Any, example: str) -> str | None:
        """An identifier of letters, digits, '.', '_' and '-' (no spaces, not empty)."""
        if not isinstance(value, str):
            self.wrong_type(path, value, f'a name in quotes such as "{example}"')
            return None
        if _TOKEN.fullmatch(value) is None or len(value) > 255:
            self.bad(
                path,
                value,
                "is not a valid name",
                f"use letters, digits, '.', '_' and '-' only, such as \"{example}\"",
            )
            return None
        return value

    def route_target_item(self, path: str, value: Any) -> RouteTargetConfig | None:
        if isinstance(value, str):  # shorthand: peers = ["hss.b.net"]
            value = {"host": value}
        if not isinstance(value, dict):
            self.wrong_type(path, value, '{ host = "...", priority = 1, weight = 100 }')
            return None
        self.unknown_keys(value, path, {"host", "priority", "weight"})
        host = self.identity(value, path, "host", example="hss.primary.example")
        priority = self.integer(value, path, "priority", 1, 0, UINT32_MAX)
        weight = self.integer(value, path, "weight", 100, 1, UINT32_MAX)
        return None if host is None else RouteTargetConfig(host, priority, weight)

    def array(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any,
        item: Any,
        min_items: int = 0,
    ) -> list[Any]:
        """A list whose items ``item(path, value)`` checks; bad items are left out."""
        value = self._get(t, prefix, key, default, f"add {key} = [...]")
        if value is MISSING:
            value = [] if default is MISSING else default
        path = _join(prefix, key)
        if not isinstance(value, list):
            self.wrong_type(path, value, "an array [ ... ]")
            return []
        if len(value) < min_items:
            self.bad(
                path, value, "is empty", f"list at least {min_items} item(s) or remove the key"
            )
        results = [item(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return [r for r in results if r is not None]

    # -- files
    def pem_file(
        self, t: Mapping[str, Any], prefix: str, key: str, base: Path, kind: str, need: bool
    ) -> Any:
        value = self._get(
            t, prefix, key, MISSING if need else None, f'add {key} = "<path of a PEM file>"'
        )
        if value is MISSING or value is None:
            return None
        return self.pem_item(_join(prefix, key), value, base, kind, need)

    def pem_files(
        self, t: Mapping[str, Any], prefix: str, key: str, base: Path, kind: str, need: bool
    ) -> tuple[Path, ...]:
        value = self._get(
            t,
            prefix,
            key,
            MISSING if need else None,
            f'add {key} = ["<path of the CA certificates (PEM)>"]',
        )
        if value is MISSING or value is None:
            return ()
        if isinstance(value, str):
            value = [value]
            paths = [self.pem_item(_join(prefix, key), value[0], base, kind, need)]
        else:
            paths = self.array(
                t,
                prefix,
                key,
                MISSING,
                lambda p, v: self.pem_item(p, v, base, kind, need),
                min_items=1,
            )
        return tuple(p for p in paths if p is not None)

    def token_file(self, t: Mapping[str, Any], prefix: str, key: str, base: Path) -> Path | None:
        """A file holding a bearer token (RFC 6750 §2.1: token68 characters), readable, one
        line of at least PROVISIONING_TOKEN_MIN characters."""
        fix = (
            'add token_file = "provisioning.token", a file holding one line made with: '
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
        value = self._get(t, prefix, key, MISSING, fix)
        path = _join(prefix, key)
        if value is MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            self.wrong_type(path, value, "a file path in quotes")
            return None
        resolved = (base / value).resolve() if not os.path.isabs(value) else Path(value)
        try:
            token = read_token(resolved)
        except OSError as exc:
            self.bad(path, value, f"cannot be read ({exc.strerror or exc}: {resolved})", fix)
            return None
        except ValueError as exc:
            self.bad(path, value, str(exc), fix)
            return None
        del token
        return resolved

    def store_target(self, path: str, value: Any, base: Path) -> str | None:
        """A PostgreSQL URL as is, or an SQLite file whose directory exists (resolved)."""
        if not isinstance(value, str):
            self.wrong_type(path, value, 'a file path or a "postgresql://..." URL in quotes')
            return None
        if not value.strip():
            self.bad(
                path, value, "is empty", 'use a file such as "cxgw.sqlite" or a postgresql:// URL'
            )
            return None
        if value.startswith(POSTGRES_SCHEMES):
            return value
        if "://" in value:
            self.bad(
                path,
                value,
                "is a URL of a kind the store does not open",
                'use "postgresql://user@host/dbname" or the path of an SQLite file',
            )
            return None
        resolved = (base / value).resolve() if not os.path.isabs(value) else Path(value)
        if resolved.is_dir():
            self.bad(
                path,
                value,
                f"is a directory ({resolved})",
                f'name an SQLite file in it, such as "{Path(value) / "cxgw.sqlite"}"',
            )
            return None
        if not resolved.parent.is_dir():
            self.bad(
                path,
                value,
                f"is in a directory that does not exist ({resolved.parent})",
                "create the directory or fix the path (relative paths start at the config "
                "file; the file itself is created)",
            )
            return None
        return str(resolved)

    def pem_item(self, path: str, value: Any, base: Path, kind: str, need: bool) -> Path | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, "a file path in quotes")
            return None
        resolved = (base / value).resolve() if not os.path.isabs(value) else Path(value)
        if not need:
            return resolved
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.bad(
                path,
                value,
                f"cannot be read ({reason}: {resolved})",
                "give the path of a readable PEM file (relative paths start at the config file)",
            )
            return None
        if f"-----BEGIN {kind}-----".encode() not in data and not (
            kind == "PRIVATE KEY" and b"PRIVATE KEY-----" in data
        ):
            self.bad(path, value, f"has no PEM {kind} block", f"use a PEM file with a {kind}")
            return None
        return resolved
