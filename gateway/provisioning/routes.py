"""The provisioning API's routes as a table: (method, path under /v1/) -> an operation.

No HTTP here: :func:`resolve` finds the route of a method and a path, :func:`call` checks
the query and the JSON body against the route's table and runs the hss_store.operations
function, returning (HTTP status, JSON value) or raising ProvisioningError. docs/openapi.json
describes the same routes and shapes (a test compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from hss_store import operations as ops
from hss_store.operations import INVALID_ARGUMENT, NOT_FOUND, ProvisioningError
from hss_store.store import HssStore

MAX_POOL_ENTRIES_PER_REQUEST = 10_000  # SQLite runs in the reactor thread: keep each call short
METHOD_NOT_ALLOWED = "method_not_allowed"


def _invalid(message: str) -> ProvisioningError:
    return ProvisioningError(INVALID_ARGUMENT, message)


# -- field checks: (name, JSON value) -> the value, or ProvisioningError ---------------------------


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string")
    return value


def optional_text(name: str, value: Any) -> str | None:
    return None if value is None else text(name, value)


def texts(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{name} must be a list of strings")
    return value


def integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{name} must be an integer")
    return value


def optional_integer(name: str, value: Any) -> int | None:
    return None if value is None else integer(name, value)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false")
    return value


def optional_boolean(name: str, value: Any) -> bool | None:
    return None if value is None else boolean(name, value)


def pairs(name: str, value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        raise _invalid(f"{name} must be a list of [IMPI, IMPU] pairs of strings")
    return [(p[0], p[1]) for p in value]


def pool_range(name: str, value: Any) -> dict[str, Any]:
    fields = {"first": integer, "last": integer, "impi_pattern": text, "impu_pattern": text, "width": integer}
    return _object(name, value, fields, required=("first", "last", "impi_pattern", "impu_pattern"))


Check = Callable[[str, Any], Any]


def _object(name: str, value: Any, fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{name} must be a JSON object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise _invalid(f"{name} has unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    missing = [f for f in required if f not in value]
    if missing:
        raise _invalid(f"{name} lacks the field(s) {', '.join(missing)}")
    return {key: fields[key](f"{name}.{key}" if name != "body" else key, item) for key, item in value.items()}


# -- query parameters ------------------------------------------------------------------------------


def _limit(name: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= ops.MAX_LIMIT:
        raise _invalid(f"{name}={value!r} is not a page size; use 1-{ops.MAX_LIMIT}")
    return int(value)


def _same(name: str, value: str) -> str:
    return value


QUERY: dict[str, Callable[[str, str], Any]] = {
    "after": _same, "limit": _limit, "direction": _same, "partner_id": _same, "scope": _same, "value": _same,
}  # fmt: skip


# -- the operations as handlers: (store, path parameters, query, body) -> JSON value ----------------

Handler = Callable[[HssStore, dict[str, str], dict[str, Any], Any], Any]


def list_subscribers(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return {"subscribers": ops.list_subscribers(store, after=query.get("after"), limit=query.get("limit", 100))}


def add_subscriber(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    fields = {
        "impi": text, "impus": texts, "k": text, "opc": optional_text, "op": optional_text, "amf": text,
        "sqn": integer, "schemes": texts, "groups": texts,
    }  # fmt: skip
    given = _object("body", body, fields, required=("impi", "impus", "k"))
    impi, impus, k = given.pop("impi"), given.pop("impus"), given.pop("k")
    return ops.add_subscriber(store, impi, impus, k, **given)


def show_subscriber(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.show_subscriber(store, path["impi"])


def remove_subscriber(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.remove_subscriber(store, path["impi"])


def list_bindings(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    rows = ops.list_bindings(
        store, direction=query.get("direction", ops.BOTH), after=query.get("after"), limit=query.get("limit", 100)
    )
    return {"bindings": rows}


def allocate_outbound(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    fields = {"real_impi": text, "real_impu": text, "partner_id": text, "rotate": optional_boolean}
    given = _object("body", body, fields, required=("real_impi", "real_impu", "partner_id"))
    return ops.allocate_outbound(store, given["real_impi"], given["real_impu"], given["partner_id"],
                                 rotate=given.get("rotate"))  # fmt: skip


def allocate_inbound(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    fields = {"primary_realm": text, "primary_host": optional_text, "primary_impi": text, "primary_impu": text,
              "rotate": optional_boolean}  # fmt: skip
    given = _object("body", body, fields, required=("primary_realm", "primary_impi", "primary_impu"))
    return ops.allocate_inbound(store, given["primary_realm"], given["primary_impi"], given["primary_impu"],
                                primary_host=given.get("primary_host"), rotate=given.get("rotate"))  # fmt: skip


def show_bindings(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return {"bindings": ops.show_bindings(store, path["identity"], direction=query.get("direction", ops.BOTH))}


def revoke_binding(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.revoke_binding(store, path["identity"], direction=query.get("direction", ops.BOTH))


def list_agreements(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return {"agreements": ops.list_agreements(store, query.get("partner_id"))}


def add_agreement(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    given = _object("body", body, {"partner_id": text, "scope": text, "value": text}, required=("partner_id", "scope"))
    return ops.add_agreement(store, given["partner_id"], given["scope"], given.get("value", ""))


def remove_agreement(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.remove_agreement(store, path["partner_id"], query.get("scope"), query.get("value"))


def list_policies(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return {"policies": ops.list_policies(store)}


def show_policy(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.show_policy(store, path["direction"])


def set_policy(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    fields = {"mode": text, "impi_pattern": optional_text, "impu_pattern": optional_text,
              "ttl_seconds": optional_integer, "rotate": boolean}  # fmt: skip
    given = _object("body", body, fields, required=("mode",))
    return ops.set_policy(store, path["direction"], given["mode"], given.get("impi_pattern"), given.get("impu_pattern"),
                          given.get("ttl_seconds"), given.get("rotate", False))  # fmt: skip


def pool_status(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    return ops.pool_status(store, path["direction"])


def add_to_pool(store: HssStore, path: dict[str, str], query: dict[str, Any], body: Any) -> Any:
    given = _object("body", body, {"pairs": pairs, "range": pool_range})
    entries = given.get("pairs", [])
    span = given.get("range")
    size = len(entries) + (max(0, span["last"] - span["first"] + 1) if span else 0)
    if size > MAX_POOL_ENTRIES_PER_REQUEST:
        raise _invalid(f"{size} pool entries in one request; send {MAX_POOL_ENTRIES_PER_REQUEST} at most per request "
                       "(or load large pools with: cxgw provision pool add)")  # fmt: skip
    if span is None:
        return ops.add_to_pool(store, path["direction"], entries)
    return ops.add_to_pool(store, path["direction"], entries, first=span["first"], last=span["last"],
                           impi_pattern=span["impi_pattern"], impu_pattern=span["impu_pattern"],
                           width=span.get("width", 0))  # fmt: skip


class Route(NamedTuple):
    method: str
    pattern: tuple[str, ...]  # segments after /v1/; "{name}" matches one segment
    handler: Handler
    status: int = 200  # on success
    query: tuple[str, ...] = ()  # query parameters it takes
    body: bool = False  # takes a JSON body


def _route(method: str, pattern: str, handler: Handler, status: int = 200, query: str = "", body: bool = False) -> Route:
    return Route(method, tuple(pattern.split("/")), handler, status, tuple(query.split()), body)


# In order: a literal segment ("bindings/outbound") before the pattern it would also match.
ROUTES: tuple[Route, ...] = (
    _route("GET", "subscribers", list_subscribers, query="after limit"),
    _route("POST", "subscribers", add_subscriber, 201, body=True),
    _route("GET", "subscribers/{impi}", show_subscriber),
    _route("DELETE", "subscribers/{impi}", remove_subscriber),
    _route("GET", "bindings", list_bindings, query="direction after limit"),
    _route("POST", "bindings/outbound", allocate_outbound, body=True),  # TR 23.781 steps 4-6
    _route("POST", "bindings/inbound", allocate_inbound, body=True),  # TR 23.781 steps 9-11
    _route("GET", "bindings/{identity}", show_bindings, query="direction"),
    _route("DELETE", "bindings/{identity}", revoke_binding, query="direction"),
    _route("POST", "bindings/{identity}/revoke", revoke_binding, query="direction"),
    _route("GET", "agreements", list_agreements, query="partner_id"),
    _route("POST", "agreements", add_agreement, 201, body=True),
    _route("DELETE", "agreements/{partner_id}", remove_agreement, query="scope value"),
    _route("GET", "policies", list_policies),
    _route("GET", "policies/{direction}", show_policy),
    _route("PUT", "policies/{direction}", set_policy, body=True),
    _route("GET", "pools/{direction}", pool_status),
    _route("POST", "pools/{direction}", add_to_pool, body=True),
)


def _match(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    found = {}
    for part, segment in zip(pattern, segments, strict=True):
        if part.startswith("{"):
            if not segment:
                return None
            found[part[1:-1]] = segment
        elif part != segment:
            return None
    return found


def resolve(method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
    """The route for a method and the decoded path segments after /v1/; ProvisioningError
    not_found, or method_not_allowed whose message lists the allowed methods."""
    allowed = []
    for route in ROUTES:
        params = _match(route.pattern, segments)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    if allowed:
        raise ProvisioningError(METHOD_NOT_ALLOWED, f"{method} is not allowed here; use {', '.join(dict.fromkeys(allowed))}")
    raise ProvisioningError(NOT_FOUND, f"no resource /v1/{'/'.join(segments)}; see /v1/openapi.json")


def allowed_methods(segments: list[str]) -> list[str]:
    return list(dict.fromkeys(r.method for r in ROUTES if _match(r.pattern, segments) is not None))


def parse_query(route: Route, query: Mapping[str, list[str]]) -> dict[str, Any]:
    parsed = {}
    for name, values in query.items():
        if name not in route.query:
            known = f"; it takes {', '.join(route.query)}" if route.query else "; it takes none"
            raise _invalid(f"unknown query parameter {name!r}{known}")
        if len(values) != 1:
            raise _invalid(f"query parameter {name!r} given {len(values)} times; give it once")
        parsed[name] = QUERY[name](name, values[0])
    return parsed


def call(store: HssStore, route: Route, params: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    """Run a resolved route against the store (in whichever thread the store wants)."""
    return route.status, route.handler(store, params, query, body)
