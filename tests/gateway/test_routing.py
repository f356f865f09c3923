"""gateway.routing.table: the routing table of RFC 6733 §2.7 and peer selection (§6.1.4-§6.1.6)."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.routing.table import NoRoute, Route, RouteAction, RouteTarget, RoutingTable

CX = 16777216
RELAY = 0xFFFFFFFF


def everyone(host):
    return host  # every target available, the "peer" is its host name


def only(*hosts):
    return lambda host: host if host in hosts else None


def route(*targets, realm="primary.example", app=CX, action=RouteAction.PROXY):
    return Route(realm, app, action, [RouteTarget(*target) if isinstance(target, tuple) else RouteTarget(target) for target in targets])


# -- lookup -------------------------------------------------------------------------------


def test_lookup_is_case_insensitive():
    table = RoutingTable([route("hss-a", realm="Primary.Example")])
    assert table.lookup("primary.example", CX).targets[0].host == "hss-a"
    assert table.lookup("PRIMARY.EXAMPLE", CX).targets[0].host == "hss-a"


def test_lookup_by_application():
    cx = route("hss-a")
    other = route("aaa-a", app=4)
    table = RoutingTable([cx, other])
    assert table.lookup("primary.example", CX) is cx
    assert table.lookup("primary.example", 4) is other
    assert table.lookup("primary.example", 5) is None
    assert table.lookup("other.example", CX) is None


def test_default_route_star_and_precedence():
    exact = route("hss-a")
    realm_relay = route("relay-a", app=RELAY)
    default_cx = route("default-cx", realm="*")
    default_any = route("default-any", realm="*", app=RELAY)
    table = RoutingTable([default_any, default_cx, realm_relay, exact])
    assert table.lookup("primary.example", CX) is exact
    assert table.lookup("primary.example", 4) is realm_relay
    assert table.lookup("elsewhere.example", CX) is default_cx
    assert table.lookup("elsewhere.example", 4) is default_any
    assert RoutingTable([default_cx]).lookup("elsewhere.example", 4) is None


def test_later_route_for_the_same_key_replaces_the_earlier():
    first, second = route("hss-a"), route("hss-b", realm="PRIMARY.example")
    table = RoutingTable([first, second])
    assert table.lookup("primary.example", CX) is second
    assert table.routes() == [second]


def test_local_action_is_kept():
    table = RoutingTable([route(realm="partner.example", action=RouteAction.LOCAL)])
    assert table.lookup("partner.example", CX).action is RouteAction.LOCAL


# -- select: priorities, exclusions, NoRoute ---------------------------------------------


def test_best_priority_wins_whatever_the_order_given():
    r = route(("backup", 2), ("main", 1))
    table = RoutingTable([r])
    assert [t.host for t in r.targets] == ["main", "backup"]
    assert {table.select(r, everyone) for _ in range(10)} == {"main"}


def test_lower_priority_used_when_the_best_is_unavailable():
    r = route(("main-1", 1), ("main-2", 1), ("backup", 2), ("last", 3))
    table = RoutingTable([r])
    assert table.select(r, only("backup", "last")) == "backup"
    assert table.select(r, only("last")) == "last"


def test_exclusions_fall_through_to_alternates():
    r = route(("main-1", 1), ("main-2", 1), ("backup", 2))
    table = RoutingTable([r])
    assert {table.select(r, everyone, exclude=("main-1",)) for _ in range(5)} == {"main-2"}
    assert table.select(r, everyone, exclude=("main-1", "main-2")) == "backup"


def test_no_available_target_raises_no_route_naming_them():
    r = route(("hss-a", 1), ("hss-b", 2))
    table = RoutingTable([r])
    with pytest.raises(NoRoute) as caught:
        table.select(r, only())
    assert str(caught.value) == f"realm primary.example, application {CX}: none of hss-a, hss-b is available"
    with pytest.raises(NoRoute):
        table.select(r, everyone, exclude=("hss-a", "hss-b"))


def test_route_without_targets_raises_no_route():
    r = route()
    with pytest.raises(NoRoute) as caught:
        RoutingTable([r]).select(r, everyone)
    assert str(caught.value) == f"realm primary.example, application {CX}: none of no peers is available"


# -- smooth weighted round robin -------------------------------------------------------------


def test_smooth_weighted_round_robin_sequence():
    # the nginx example: weights 5, 1, 1 give a a b a c a a
    r = route(("a", 1, 5), ("b", 1, 1), ("c", 1, 1))
    table = RoutingTable([r])
    assert [table.select(r, everyone) for _ in range(14)] == list("aabacaa") * 2


def test_equal_weights_alternate():
    r = route(("a", 1, 100), ("b", 1, 100))
    table = RoutingTable([r])
    picks = [table.select(r, everyone) for _ in range(6)]
    assert picks in (list("ababab"), list("bababa"))


@pytest.mark.parametrize("weights", [(100, 100), (70, 30), (1, 2, 3, 4), (500, 1)])
def test_proportions_over_many_picks_are_exact(weights):
    hosts = [f"hss-{index}" for index in range(len(weights))]
    r = route(*[(host, 1, weight) for host, weight in zip(hosts, weights, strict=True)])
    table = RoutingTable([r])
    rounds = 50
    picks = Counter(table.select(r, everyone) for _ in range(rounds * sum(weights)))
    assert picks == {host: rounds * weight for host, weight in zip(hosts, weights, strict=True)}


def test_proportions_among_available_targets_only():
    r = route(("a", 1, 300), ("b", 1, 100), ("c", 1, 100), ("z", 2, 1000))
    table = RoutingTable([r])
    picks = Counter(table.select(r, only("a", "c", "z")) for _ in range(4000))
    assert picks == {"a": 3000, "c": 1000}


def test_spread_is_smooth_not_bursty():
    r = route(("a", 1, 70), ("b", 1, 30))
    table = RoutingTable([r])
    picks = [table.select(r, everyone) for _ in range(100)]
    # never more than three a's in a row with 70/30
    longest = max(len(run) for run in "".join(picks).split("b"))
    assert longest <= 3
    assert picks.count("a") == 70
