"""gateway.config: every validation rule, defaults, the example files, diff for reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway import config as cfg
from gateway.config import ConfigError, diff, load_config, parse_config

EXAMPLES = Path(cfg.__file__).parent.parent / "examples"

MINIMAL = """
[node]
origin_host = "gw.partner.example"
origin_realm = "partner.example"
"""

FULL = """
[node]
origin_host = "gw.partner.example"
origin_realm = "partner.example"
role = "partner"

[[listen]]
port = 0

[[peers]]
host = "hss.primary.example"
realm = "primary.example"
address = "127.0.0.1"
port = 3869

[[peers]]
host = "hss2.primary.example"
realm = "primary.example"

[[routes]]
realm = "primary.example"
action = "proxy"
peers = [{ host = "hss.primary.example", priority = 0, weight = 10 },
         { host = "hss2.primary.example", priority = 1 }]
"""


def errors_of(text: str, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gateway.toml", **kwargs)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def one_error(text: str, **kwargs) -> str:
    errors = errors_of(text, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


def write_pems(directory: Path) -> None:
    """Files that pass the config's PEM checks (the TLS tests use real certificates)."""
    (directory / "tls").mkdir(exist_ok=True)
    cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    key = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    for name in ("gw.partner.example", "gw.primary.example"):
        (directory / "tls" / f"{name}.pem").write_bytes(cert)
        (directory / "tls" / f"{name}.key").write_bytes(key)
    (directory / "tls" / "interconnect-ca.pem").write_bytes(cert)


# --- defaults and the happy path


def test_minimal_config_gets_rfc_defaults():
    config = parse_config(MINIMAL, now=1_000_000_000.7)
    node = config.node
    assert node.origin_host == "gw.partner.example"
    assert node.product_name == "cxgw" and node.vendor_id == 0 and node.firmware_revision is None
    assert node.host_ip_addresses == ("127.0.0.1",)
    assert node.applications == (cfg.Application("cx", 16777216, 10415),)
    assert node.roles == ("relay",)
    assert config.store is config.hss is config.partner is config.primary is None  # a relay
    assert node.origin_state_id == 1_000_000_000  # derived from the start time
    assert config.listen == () and config.peers == () and config.routes == ()
    assert config.tls is None and config.metrics is None
    assert config.timers == cfg.TimersConfig(30, 30, 4, 5, 10, 300, 3600)
    assert config.limits == cfg.LimitsConfig()  # the documented defaults
    assert (config.limits.max_pending_per_peer, config.limits.max_pending, config.limits.max_connections) == (10000, 100000, 1000)
    assert config.logging == cfg.LoggingConfig("info", "text")
    assert config.unknown_peers.accept_realms == ()
    assert config.source == "<string>"


def test_full_config_values_and_defaults():
    config = parse_config(FULL)
    assert config.listen == (cfg.ListenConfig("127.0.0.1", 0, "tcp"),)
    hss, hss2 = config.peers
    assert (hss.address, hss.port, hss.connect, hss.tls_name) == (
        "127.0.0.1", 3869, True, "hss.primary.example")
    assert (hss2.address, hss2.port, hss2.transport) == ("hss2.primary.example", 3868, "tcp")
    (route,) = config.routes
    assert route.application.application_id == 16777216 and route.action == "proxy"
    assert route.peers == (cfg.RouteTargetConfig("hss.primary.example", 0, 10),
                           cfg.RouteTargetConfig("hss2.primary.example", 1, 100))
    assert route.key == ("primary.example", 16777216)
    assert config.peer("HSS.Primary.Example") is hss and config.peer("nope") is None


def test_config_is_frozen():
    config = parse_config(MINIMAL)
    with pytest.raises(AttributeError):
        config.node.origin_host = "x"  # type: ignore[misc]


def test_explicit_node_values():
    config = parse_config(MINIMAL + """
product_name = "gw"
vendor_id = 10415
firmware_revision = 7
host_ip_addresses = ["192.0.2.1", "2001:db8::1"]
applications = ["cx", 16777216, 4294967295, 42]
origin_state_id = 5
role = "hss"
""")
    node = config.node
    assert (node.product_name, node.vendor_id, node.firmware_revision) == ("gw", 10415, 7)
    assert node.host_ip_addresses == ("192.0.2.1", "2001:db8::1")
    assert [a.application_id for a in node.applications] == [16777216, 0xFFFFFFFF, 42]
    assert node.applications[2] == cfg.Application("42", 42, 0)
    assert node.origin_state_id == 5 and node.roles == ("hss",)


def test_tls_port_default_and_metrics_and_logging():
    config = parse_config(MINIMAL + """
[[listen]]
transport = "tls"
address = "::1"
[[peers]]
host = "gw.primary.example"
realm = "primary.example"
transport = "tls"
tls_name = "cert.primary.example"
[tls]
certificate = "c.pem"
private_key = "k.pem"
ca_certificates = "ca.pem"
verify_peer_identity = false
[metrics]
port = 0
[logging]
level = "DEBUG"
format = "json"
""", base_dir=_pem_dir())
    assert config.listen[0].port == 5658 and config.listen[0].address == "::1"
    assert config.peers[0].port == 5658 and config.peers[0].tls_name == "cert.primary.example"
    assert config.tls is not None and config.tls.verify_peer_identity is False
    assert config.tls.ca_certificates == (_pem_dir() / "ca.pem",)
    assert config.metrics == cfg.MetricsConfig("127.0.0.1", 0)
    assert config.logging == cfg.LoggingConfig("debug", "json")


_PEM_DIR: list[Path] = []


def _pem_dir() -> Path:
    return _PEM_DIR[0]


@pytest.fixture(autouse=True)
def pem_dir(tmp_path):
    _PEM_DIR[:] = [tmp_path]
    (tmp_path / "c.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    (tmp_path / "k.pem").write_text("-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----\n")
    return tmp_path


# --- one row per rule: (snippet appended to a valid file, expected error line)

RULES = [
    # [node]
    ('[node]\norigin_realm = "a.example"', "node.origin_host is missing; add origin_host ="),
    ('[node]\norigin_host = "gw.a.example"', "node.origin_realm is missing"),
    ('[node]\norigin_host = "gw a.example"\norigin_realm = "a.example"',
     'node.origin_host = "gw a.example" is not a Diameter identity; use an FQDN'),
    ('[node]\norigin_host = "gw..a"\norigin_realm = "a.example"', "is not a Diameter identity"),
    ('[node]\norigin_host = "gw.a.example"\norigin_realm = "ä.example"',
     'node.origin_realm = "ä.example" is not a Diameter identity'),
    ('[node]\norigin_host = 5\norigin_realm = "a.example"', "node.origin_host = 5 is an integer; use a Diameter identity"),
    ('[node]\norigin_host = "x"\norigin_realm = "a.example"\nproduct_name = ""', 'node.product_name = "" is empty'),
    (MINIMAL + "vendor_id = -1", "node.vendor_id = -1 is out of range; use 0-4294967295"),
    (MINIMAL + "vendor_id = 4294967296", "node.vendor_id = 4294967296 is out of range"),
    (MINIMAL + 'firmware_revision = "1.0"', 'node.firmware_revision = "1.0" is a string; use an integer 0-4294967295'),
    (MINIMAL + "origin_state_id = 1.5", "node.origin_state_id = 1.5 is a float; use an integer"),
    (MINIMAL + 'host_ip_addresses = ["300.1.1.1"]', 'node.host_ip_addresses[0] = "300.1.1.1" is not an IP address'),
    (MINIMAL + "host_ip_addresses = []", "node.host_ip_addresses = [] is empty; list at least 1"),
    (MINIMAL + 'host_ip_addresses = "127.0.0.1"', 'node.host_ip_addresses = "127.0.0.1" is a string; use an array'),
    (MINIMAL + 'applications = ["s6a"]', 'node.applications[0] = "s6a" is not a known application; use "cx", "relay" or an Application-Id'),
    (MINIMAL + "applications = [-1]", "node.applications[0] = -1 is not a known application"),
    (MINIMAL + "applications = [1.5]", "node.applications[0] = 1.5 is a float"),
    (MINIMAL + 'role = "proxy"', 'node.role = "proxy" is not supported; use one of "relay", "partner", "primary", "hss"'),
    (MINIMAL + "orign_realm = 1", "node.orign_realm is not a known key; did you mean origin_realm?"),
    (MINIMAL + "[nodes]\n", "[nodes] is not a known section; did you mean node?"),
    # [[listen]]
    (MINIMAL + "[[listen]]\nport = 70000", "listen[0].port = 70000 is not a TCP port; use 0-65535 (0: the OS picks a free port)"),
    (MINIMAL + "[[listen]]\nport = -1", "listen[0].port = -1 is not a TCP port"),
    (MINIMAL + '[[listen]]\nport = "3868"', 'listen[0].port = "3868" is a string; use an integer 0-65535'),
    (MINIMAL + '[[listen]]\naddress = "localhost"', 'listen[0].address = "localhost" is not an IP address'),
    (MINIMAL + '[[listen]]\ntransport = "sctp"', 'listen[0].transport = "sctp" is not supported (Twisted has no SCTP); use one of "tcp", "tls"'),
    (MINIMAL + "[[listen]]\nport = 3868\n[[listen]]\nport = 3868", "listen[1].port = 3868 on 127.0.0.1 is already used by listen[0]"),
    (MINIMAL + "[listen]\nport = 1", "listen = { port = 1 } is a table; use [[listen]] (an array of tables)"),
    ("listen = [1]\n" + MINIMAL, "listen[0] = 1 is an integer; use a table under [[listen]]"),
    (MINIMAL + "[[listen]]\nprt = 1", "listen[0].prt is not a known key; did you mean port?"),
    # [tls]
    (MINIMAL + '[[listen]]\ntransport = "tls"', '[tls] is missing but listen[0] uses transport "tls"; add a [tls] section'),
    (MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"',
     "tls.ca_certificates is missing"),
    (MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "nope.pem"\nprivate_key = "k.pem"\nca_certificates = ["ca.pem"]',
     'tls.certificate = "nope.pem" cannot be read (No such file or directory'),
    (MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "k.pem"\nprivate_key = "k.pem"\nca_certificates = ["ca.pem"]',
     'tls.certificate = "k.pem" has no PEM CERTIFICATE block'),
    (MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "c.pem"\nprivate_key = "c.pem"\nca_certificates = ["ca.pem"]',
     'tls.private_key = "c.pem" has no PEM PRIVATE KEY block'),
    (MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"\nca_certificates = []',
     "tls.ca_certificates = [] is empty"),
    (MINIMAL + '[tls]\ncertificate = "c.pem"\nprivate_key = "k.pem"\nca_certificates = "ca.pem"\nverify_peer_identity = "yes"',
     'tls.verify_peer_identity = "yes" is a string; use true or false'),
    # [timers]
    (MINIMAL + "[timers]\ntwinit = 5", "timers.twinit = 5 is not a valid duration; use at least 6 (RFC 3539 §3.4.1)"),
    (MINIMAL + "[timers]\ntc = 0", "timers.tc = 0 is not a valid duration; use more than 0 seconds"),
    (MINIMAL + "[timers]\ntx = -1", "timers.tx = -1 is not a valid duration"),
    (MINIMAL + "[timers]\ndpa_timeout = inf", "timers.dpa_timeout = inf is not a valid duration"),
    (MINIMAL + '[timers]\ncea_timeout = "10s"', 'timers.cea_timeout = "10s" is a string; use a number of seconds'),
    (MINIMAL + "[timers]\nbusy_hold = -1", "timers.busy_hold = -1 is not a valid duration; use at least 0 seconds"),
    (MINIMAL + "[timers]\ndo_not_want_to_talk_hold = -1", "timers.do_not_want_to_talk_hold = -1 is not a valid duration"),
    (MINIMAL + "[timers]\ntw = 30", "timers.tw is not a known key"),
    # [limits]
    (MINIMAL + "[limits]\nmax_message_size = 4095", "limits.max_message_size = 4095 is out of range; use 4096-16777215"),
    (MINIMAL + "[limits]\nmax_message_size = 16777216", "limits.max_message_size = 16777216 is out of range"),
    (MINIMAL + "[limits]\nmax_pending = 0", "limits.max_pending = 0 is out of range; use 1 or more"),
    (MINIMAL + "[limits]\nmax_pending_per_peer = 0", "limits.max_pending_per_peer = 0 is out of range"),
    (MINIMAL + "[limits]\nmax_connections = 0", "limits.max_connections = 0 is out of range"),
    (MINIMAL + "[limits]\nduplicate_cache_size = -1", "limits.duplicate_cache_size = -1 is out of range; use 0 or more"),
    (MINIMAL + "[limits]\nduplicate_ttl = 0", "limits.duplicate_ttl = 0 is not a valid duration"),
    (MINIMAL + "[limits]\nmax_pending_per_peer = 11\nmax_pending = 10",
     "limits.max_pending_per_peer = 11 is more than limits.max_pending = 10"),
    # [[peers]]
    (MINIMAL + '[[peers]]\nrealm = "b.example"', "peers[0].host is missing"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"', "peers[0].realm is missing"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\nport = 70000',
     "peers[0].port = 70000 is not a TCP port; use 1-65535"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\nport = 0', "peers[0].port = 0 is not a TCP port"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\naddress = "no such host"',
     'peers[0].address = "no such host" is neither an IP address nor a host name'),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\nconnect = 1', "peers[0].connect = 1 is an integer; use true or false"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\ntransport = "udp"', 'peers[0].transport = "udp" is not supported'),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\ntls_name = "*.b.example"', 'peers[0].tls_name = "*.b.example" is not a Diameter identity'),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\napplications = [16777217]',
     "peers[0].applications[0] = 16777217 is not in node.applications; add it to node.applications"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\n[[peers]]\nhost = "HSS.B.example"\nrealm = "b.example"',
     'peers[1].host = "HSS.B.example" is already defined by peers[0]; give each [[peers]] a unique host'),
    (MINIMAL + '[[peers]]\nhost = "gw.partner.example"\nrealm = "partner.example"',
     'peers[0].host = "gw.partner.example" is this node\'s own node.origin_host'),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\nconnect = false',
     "peers[0].connect = false but there is no [[listen]] for it to reach us"),
    (MINIMAL + '[[peers]]\nhost = "hss.b.example"\nrealm = "b.example"\ntransport = "tls"',
     '[tls] is missing but peers[0] uses transport "tls"'),
    # [unknown_peers]
    (MINIMAL + '[unknown_peers]\naccept_realms = ["b example"]', 'unknown_peers.accept_realms[0] = "b example" is not a Diameter identity'),
    (MINIMAL + '[unknown_peers]\naccept_realms = "b.example"', 'unknown_peers.accept_realms = "b.example" is a string; use an array'),
    (MINIMAL + "[unknown_peers]\naccept = []", "unknown_peers.accept is not a known key; did you mean accept_realms?"),
    # [[routes]]
    (FULL + '[[routes]]\nrealm = "c.example"', 'routes[1].action is missing; add action = one of "proxy", "relay", "local"'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "redirect"', 'routes[1].action = "redirect" is not supported'),
    (FULL + '[[routes]]\naction = "local"', "routes[1].realm is missing"),
    (FULL + '[[routes]]\nrealm = "c example"\naction = "local"', 'or "*" for the default route'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"', "routes[1].peers is missing; add peers ="),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "relay"\npeers = []', 'routes[1].peers = [] is empty for action "relay"'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "local"\npeers = ["hss.primary.example"]',
     'routes[1].peers = ["hss.primary.example"] is set on a local route'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = ["hss.c.example"]',
     'routes[1].peers[0].host = "hss.c.example" is not defined in [[peers]]'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = ["hss.primary.example", "HSS.primary.example"]',
     'routes[1].peers[1].host = "HSS.primary.example" is listed twice in this route'),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = [{ host = "hss.primary.example", priority = -1 }]',
     "routes[1].peers[0].priority = -1 is out of range; use 0-4294967295"),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = [{ host = "hss.primary.example", weight = 0 }]',
     "routes[1].peers[0].weight = 0 is out of range; use 1-4294967295"),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = [{ host = "hss.primary.example", wieght = 5 }]',
     "routes[1].peers[0].wieght is not a known key; did you mean weight?"),
    (FULL + '[[routes]]\nrealm = "c.example"\naction = "proxy"\npeers = [1]', "routes[1].peers[0] = 1 is an integer"),
    (FULL + '[[routes]]\nrealm = "c.example"\napplication = "s6a"\naction = "local"', 'routes[1].application = "s6a" is not a known application'),
    (FULL + '[[routes]]\nrealm = "c.example"\napplication = 16777217\naction = "local"',
     "routes[1].application = 16777217 is not in node.applications"),
    (FULL + '[[routes]]\nrealm = "Primary.example"\naction = "local"',
     'routes[1].realm = "Primary.example" with application cx is already routed by routes[0]'),
    (FULL + '[[routes]]\nrealm = "*"\naction = "local"\n[[routes]]\nrealm = "*"\naction = "local"',
     'routes[2].realm = "*" with application cx is already routed by routes[1]'),
    # [metrics] and [logging]
    (MINIMAL + "[metrics]\nport = 65536", "metrics.port = 65536 is not a TCP port"),
    (MINIMAL + '[metrics]\naddress = "0.0.0"', 'metrics.address = "0.0.0" is not an IP address'),
    (MINIMAL + "[[listen]]\nport = 9000\n[metrics]\nport = 9000", "metrics.port = 9000 on 127.0.0.1 is already used by listen[0]"),
    (MINIMAL + '[logging]\nlevel = "trace"', 'logging.level = "trace" is not supported; use one of "debug", "info", "warn", "error"'),
    (MINIMAL + '[logging]\nformat = "xml"', 'logging.format = "xml" is not supported; use one of "text", "json"'),
]


@pytest.mark.parametrize(("text", "expected"), RULES, ids=[r[1][:60] for r in RULES])
def test_each_rule_reports_path_value_and_fix(text, expected, pem_dir):
    error = one_error(text, base_dir=pem_dir)
    assert error.startswith("gateway.toml: ")
    assert expected in error
    assert "; " in error  # every message carries a fix after the semicolon


def test_route_to_peer_without_the_application():
    text = MINIMAL + """
applications = ["cx", 42]
[[peers]]
host = "hss.b.example"
realm = "b.example"
applications = ["cx"]
[[routes]]
realm = "b.example"
application = 42
action = "proxy"
peers = ["hss.b.example"]
"""
    assert 'routes[0].peers[0].host = "hss.b.example" does not list application 42' in one_error(text)


def test_all_errors_are_reported_together():
    text = """
[node]
origin_host = "gw b"
[[listen]]
port = 70000
[[peers]]
host = "hss.b.example"
realm = "b.example"
port = 70000
[timers]
twinit = 1
[logging]
level = "loud"
"""
    errors = errors_of(text)
    assert errors == [
        'gateway.toml: node.origin_host = "gw b" is not a Diameter identity; use an FQDN such as '
        "\"gw.partner.example\" (letters, digits, '-', '.')",
        'gateway.toml: node.origin_realm is missing; add origin_realm = "partner.example"',
        "gateway.toml: listen[0].port = 70000 is not a TCP port; use 0-65535 (0: the OS picks a free port)",
        "gateway.toml: peers[0].port = 70000 is not a TCP port; use 1-65535",
        "gateway.toml: timers.twinit = 1 is not a valid duration; use at least 6 (RFC 3539 §3.4.1); 30 is the default",
        'gateway.toml: logging.level = "loud" is not supported; use one of "debug", "info", "warn", "error"',
    ]


def test_missing_or_misshapen_node_section():
    assert errors_of("node = 1\n") == [
        "gateway.toml: node = 1 is an integer; use a [node] table",
        'gateway.toml: node.origin_host is missing; add origin_host = "gw.partner.example"',
        'gateway.toml: node.origin_realm is missing; add origin_realm = "partner.example"',
    ]
    assert len(errors_of("")) == 2


def test_toml_syntax_error():
    error = one_error("[node\n")
    assert error.startswith("gateway.toml: not valid TOML (") and "fix the syntax" in error


def test_tls_files_not_checked_when_tls_is_unused():
    config = parse_config(MINIMAL + '[tls]\ncertificate = "no.pem"\nprivate_key = "no.key"\n', base_dir="/nonexistent")
    assert config.tls is not None and config.tls.certificate == Path("/nonexistent/no.pem")
    assert config.tls.ca_certificates == ()


def test_load_config_resolves_tls_paths_against_the_file(pem_dir):
    (pem_dir / "gw.toml").write_text(MINIMAL + """
[[listen]]
port = 0
transport = "tls"
[tls]
certificate = "c.pem"
private_key = "k.pem"
ca_certificates = ["ca.pem", "c.pem"]
""")
    config = load_config(pem_dir / "gw.toml")
    assert config.source == str(pem_dir / "gw.toml")
    assert config.tls.certificate == pem_dir / "c.pem"
    assert config.tls.ca_certificates == (pem_dir / "ca.pem", pem_dir / "c.pem")


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml: cannot read the configuration" in info.value.errors[0]


def test_unreadable_tls_file(pem_dir):
    (pem_dir / "dir.pem").mkdir()  # unreadable as a file, even for root
    text = MINIMAL + '[[listen]]\ntransport = "tls"\n[tls]\ncertificate = "dir.pem"\nprivate_key = "k.pem"\nca_certificates = "ca.pem"'
    assert 'tls.certificate = "dir.pem" cannot be read (Is a directory' in one_error(text, base_dir=pem_dir)


@pytest.mark.parametrize(("name", "roles"), [("partner.toml", ("partner",)), ("primary.toml", ("primary", "hss"))])
def test_example_files_load(name, roles, tmp_path):  # the TLS examples, with test certificates
    shutil.copy(EXAMPLES / name, tmp_path / name)
    write_pems(tmp_path)
    config = load_config(tmp_path / name)
    assert config.node.roles == roles
    assert config.tls is not None and config.tls.certificate.is_file()
    assert config.metrics is not None
    stem = name.removesuffix(".toml")
    assert config.store == cfg.StoreConfig(str(tmp_path / f"{stem}.sqlite"), 2.0, 4)


def test_example_needs_its_tls_files(tmp_path):
    shutil.copy(EXAMPLES / "primary.toml", tmp_path / "primary.toml")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "primary.toml")
    assert [e.split(" = ")[0] for e in info.value.errors] == [
        f"{tmp_path / 'primary.toml'}: tls.{key}" for key in ("certificate", "private_key", "ca_certificates[0]")
    ]


# --- diff for SIGHUP reload


def test_diff_identical_is_empty():
    old = parse_config(FULL, now=1)
    new = parse_config(FULL, now=2)  # a new derived Origin-State-Id is not a change
    result = diff(old, new)
    assert result.empty and result.restart_required == ()


def test_diff_peers_routes_and_sections():
    old = parse_config(FULL)
    new_text = FULL.replace("port = 3869", "port = 3870").replace(
        '[[peers]]\nhost = "hss2.primary.example"', '[[peers]]\nhost = "hss3.primary.example"'
    ).replace('host = "hss2.primary.example", priority = 1', 'host = "hss3.primary.example", priority = 1')
    new_text += '[[routes]]\nrealm = "*"\naction = "local"\n[logging]\nlevel = "debug"\n[[listen]]\nport = 0\n'
    result = diff(old, parse_config(new_text))
    assert result.peers_added == ("hss3.primary.example",)
    assert result.peers_removed == ("hss2.primary.example",)
    assert result.peers_changed == ("hss.primary.example",)
    assert result.routes_added == (("*", 16777216),)
    assert result.routes_changed == (("primary.example", 16777216),)
    assert result.routes_removed == ()
    assert result.sections_changed == ("listen", "logging")
    assert result.restart_required == ("listen",)
    assert not result.empty


def test_diff_route_removed_and_case_insensitive_hosts():
    old = parse_config(FULL)
    new = parse_config(FULL.replace('host = "hss.primary.example"\nrealm', 'host = "HSS.primary.example"\nrealm')
                       .split("[[routes]]")[0])
    result = diff(old, new)
    assert result.routes_removed == (("primary.example", 16777216),)
    assert result.peers_added == result.peers_removed == ()
    assert result.peers_changed == ("HSS.primary.example",)  # the spelling changed


def test_relay_example_loads_as_shipped():
    config = load_config(EXAMPLES / "relay.toml")
    assert config.node.roles == ("relay",) and config.tls is None
    assert [route.realm for route in config.routes] == ["primary.example", "partner.example"]
    assert config.unknown_peers.accept_realms == ("partner.example",)


# --- the Cx roles: node.role, [store], [hss], [partner], [primary]

PRIMARY_HEAD = """
[node]
origin_host = "gw.primary.example"
origin_realm = "primary.example"
role = ["primary", "hss"]

[[listen]]
port = 0

[[peers]]
host = "gw.partner.example"
realm = "partner.example"
connect = false
"""
PARTNERS = """
[[primary.partners]]
host = "gw.partner.example"
partner_id = "partner-a"
"""
PRIMARY = PRIMARY_HEAD + PARTNERS

# the primary role alone: the HSS is elsewhere, reached through a route
PRIMARY_REMOTE_HSS = PRIMARY.replace('role = ["primary", "hss"]', 'role = "primary"') + """
[[peers]]
host = "hss.primary.example"
realm = "primary.example"
[[routes]]
realm = "primary.example"
action = "proxy"
peers = ["hss.primary.example"]
[primary]
hss_realm = "primary.example"
hss_host = "hss.primary.example"
"""


def with_role(role: str) -> str:
    return MINIMAL + f"role = {role}\n"


def test_role_forms_and_defaults_of_the_role_sections(pem_dir):
    config = parse_config(PRIMARY, base_dir=pem_dir)
    assert config.node.roles == ("primary", "hss")
    assert config.store == cfg.StoreConfig(str(pem_dir / "cxgw.sqlite"), 2.0, 4)  # the default
    assert config.hss == cfg.HssConfig(5)
    assert config.primary == cfg.PrimaryConfig(
        partners=(cfg.PartnerPeerConfig("gw.partner.example", "partner-a"),), hide_topology=True)
    assert config.partner is None
    assert config.primary.partner_id("GW.Partner.example") == "partner-a"
    assert config.primary.partner_id("gw.other.example") is None

    partner = parse_config(with_role('"Partner"'), base_dir=pem_dir)
    assert partner.node.roles == ("partner",)
    assert partner.partner == cfg.PartnerConfig(True, 1.0)
    assert partner.hss is partner.primary is None
    assert partner.store == cfg.StoreConfig(str(pem_dir / "cxgw.sqlite"))

    hss = parse_config(with_role('["hss", "HSS"]'), base_dir=pem_dir)  # repeats are merged
    assert hss.node.roles == ("hss",) and hss.hss == cfg.HssConfig()
    assert hss.partner is hss.primary is None and hss.store is not None

    relay = parse_config(with_role('["relay"]'))
    assert relay.node.roles == ("relay",) and relay.store is None


def test_all_roles_but_relay_together(pem_dir):
    config = parse_config(PRIMARY.replace('role = ["primary", "hss"]', 'role = ["hss", "partner", "primary"]'),
                          base_dir=pem_dir)
    assert config.node.roles == ("hss", "partner", "primary")
    assert config.hss is not None and config.partner is not None and config.primary is not None


def test_explicit_role_sections(pem_dir):
    (pem_dir / "db").mkdir()
    config = parse_config(PRIMARY_HEAD + """
[store]
target = "db/hss.sqlite"
deadline = 1.5
threads = 64
[hss]
max_vectors = 32
[primary]
hide_topology = false
revocation_poll = 0.5
bindings_in_memory = 0
""" + PARTNERS, base_dir=pem_dir)
    assert config.store == cfg.StoreConfig(str(pem_dir / "db" / "hss.sqlite"), 1.5, 64)
    assert config.hss == cfg.HssConfig(32)
    assert config.primary is not None and config.primary.hide_topology is False
    assert config.primary.revocation_poll == 0.5 and config.primary.bindings_in_memory == 0
    partner = parse_config(with_role('"partner"') + "[partner]\nhide_topology = false\nrevocation_poll = 0.25\n"
                           "bindings_in_memory = 10\n", base_dir=pem_dir)
    assert partner.partner == cfg.PartnerConfig(False, 0.25, 10)


@pytest.mark.parametrize("url", ["postgresql://cxgw@db.primary.example/hss", "postgres://localhost/hss?sslmode=require"])
def test_store_postgres_url_is_taken_as_is(url):
    config = parse_config(with_role('"hss"') + f'[store]\ntarget = "{url}"\n', base_dir="/nonexistent")
    assert config.store is not None and config.store.target == url


def test_store_absolute_path_and_load_config_resolves_against_the_file(pem_dir):
    config = parse_config(with_role('"hss"') + f'[store]\ntarget = "{pem_dir}/abs.sqlite"\n', base_dir="/nonexistent")
    assert config.store is not None and config.store.target == str(pem_dir / "abs.sqlite")
    (pem_dir / "etc" / "data").mkdir(parents=True)
    (pem_dir / "etc" / "gw.toml").write_text(with_role('"hss"') + '[store]\ntarget = "data/../data/hss.sqlite"\n')
    config = load_config(pem_dir / "etc" / "gw.toml")
    assert config.store is not None and config.store.target == str(pem_dir / "etc" / "data" / "hss.sqlite")
    assert not (pem_dir / "etc" / "data" / "hss.sqlite").exists()  # checking creates nothing
    (pem_dir / "etc" / "plain.toml").write_text(with_role('"partner"'))
    default = load_config(pem_dir / "etc" / "plain.toml")
    assert default.store is not None and default.store.target == str(pem_dir / "etc" / "cxgw.sqlite")


HSS = with_role('"hss"')
PARTNER = with_role('"partner"')

CX_RULES = [
    # node.role
    (with_role('"hs"'), 'node.role = "hs" is not supported; did you mean "hss"? ("relay", "partner", "primary", "hss")'),
    (with_role('["primary", "hsss"]'), 'node.role[1] = "hsss" is not supported; did you mean "hss"?'),
    (with_role('["primary", 5]'), 'node.role[1] = 5 is an integer; use one of "relay", "partner", "primary", "hss"'),
    (with_role("[]"), 'node.role = [] is empty; name at least one role, such as "relay"'),
    (with_role("5"), 'node.role = 5 is an integer; use one of "relay", "partner", "primary", "hss" or an array of them'),
    (with_role('["relay", "hss"]'),
     'node.role = ["relay", "hss"] combines "relay" with other roles (a relay serves no application itself); '
     'use role = "relay" alone, or drop "relay": role = "hss"'),
    (with_role('["hss", "relay", "partner"]'), 'or drop "relay": role = ["hss", "partner"]'),
    (MINIMAL + 'roles = ["hss"]', "node.roles is not a known key; did you mean role?"),
    # a wrong role is reported alone: no error about the sections it would have used
    (with_role('"hs"') + "[hss]\n[store]\ntarget = \"x.sqlite\"\n", 'node.role = "hs" is not supported'),
    # any Cx role serves Cx
    (HSS + "applications = [42]",
     'node.applications = [42] does not include "cx", which node.role "hss" serves (TS 29.229); add "cx" to node.applications'),
    # a section for a role not played
    (PRIMARY + "[partner]\n",
     '[partner] is set but node.role is ["primary", "hss"]; remove the section or add "partner" to node.role'),
    (PARTNER + "[hss]\nmax_vectors = 5\n", '[hss] is set but node.role is "partner"; remove the section or add "hss" to node.role'),
    (HSS + "[primary]\n", '[primary] is set but node.role is "hss"; remove the section or add "primary" to node.role'),
    (MINIMAL + '[store]\ntarget = "x.sqlite"\n',
     '[store] is set but node.role is "relay", which uses no SIP database; remove the section or play a role that does'),
    # [store]
    (HSS + "[store]\nthreads = 2\n", 'store.target is missing; add target = "cxgw.sqlite" (an SQLite file; relative paths start at this file) or target = "postgresql://'),
    (HSS + '[store]\ntarget = ""\n', 'store.target = "" is empty; use a file such as "cxgw.sqlite" or a postgresql:// URL'),
    (HSS + "[store]\ntarget = 5\n", 'store.target = 5 is an integer; use a file path or a "postgresql://..." URL in quotes'),
    (HSS + '[store]\ntarget = "nodir/hss.sqlite"\n',
     'store.target = "nodir/hss.sqlite" is in a directory that does not exist ('),
    (HSS + '[store]\ntarget = "."\n', 'store.target = "." is a directory ('),
    (HSS + '[store]\ntarget = "mysql://db/hss"\n', 'store.target = "mysql://db/hss" is a URL of a kind the store does not open; use "postgresql://'),
    (HSS + '[store]\ntarget = "x.sqlite"\ndeadline = 0\n', "store.deadline = 0 is not a valid duration; use more than 0 seconds"),
    (HSS + '[store]\ntarget = "x.sqlite"\ndeadline = 4\n',
     "store.deadline = 4.0 is not below timers.tx = 4.0: a store call must end before the request it serves times out; "
     "lower store.deadline or raise timers.tx"),
    (HSS + "[timers]\ntx = 1.5\n", "store.deadline = 2.0 (the default) is not below timers.tx = 1.5"),
    (HSS + '[store]\ntarget = "x.sqlite"\nthreads = 0\n', "store.threads = 0 is out of range; use 1-64"),
    (HSS + '[store]\ntarget = "x.sqlite"\nthreads = 65\n', "store.threads = 65 is out of range; use 1-64"),
    (HSS + '[store]\ntarget = "x.sqlite"\ndeadlin = 1\n', "store.deadlin is not a known key; did you mean deadline?"),
    (HSS + 'store = "x.sqlite"\n', 'node.store is not a known key'),
    # [hss]
    (HSS + "[hss]\nmax_vectors = 0\n", "hss.max_vectors = 0 is out of range; use 1-32"),
    (HSS + "[hss]\nmax_vectors = 33\n", "hss.max_vectors = 33 is out of range; use 1-32"),
    (HSS + "[hss]\nmax_vector = 3\n", "hss.max_vector is not a known key; did you mean max_vectors?"),
    # [partner]
    (PARTNER + "[partner]\nrevocation_poll = 0\n", "partner.revocation_poll = 0 is not a valid duration"),
    (PARTNER + '[partner]\nhide_topology = "yes"\n', 'partner.hide_topology = "yes" is a string; use true or false'),
    (PARTNER + "[partner]\nbindings_in_memory = -1\n",
     "partner.bindings_in_memory = -1 is out of range; use 0-50000000"),
    (PARTNER + '[partner]\nbindings_in_memory = "all"\n', "partner.bindings_in_memory"),
    (PARTNER + "[partner]\nhide_topolgy = true\n", "partner.hide_topolgy is not a known key; did you mean hide_topology?"),
    # [primary]
    (PRIMARY_HEAD, 'primary.partners is missing; a primary with no partner serves nobody: add [[primary.partners]] with '
     'host = "gw.partner.example" and partner_id = "partner-a"'),
    (PRIMARY_HEAD + "[primary]\npartners = []\n",
     'primary.partners = [] is empty: a primary with no partner serves nobody; add [[primary.partners]] with host'),
    (PRIMARY_HEAD + '[primary]\npartners = "gw.partner.example"\n',
     'primary.partners = "gw.partner.example" is a string; use [[primary.partners]] (an array of tables)'),
    (PRIMARY_HEAD + "[primary]\npartners = [1]\n", "primary.partners[0] = 1 is an integer; use a table under [[primary.partners]]"),
    (PRIMARY + '[[primary.partners]]\nhost = "gw.other.example"\npartner_id = "partner-b"\n',
     'primary.partners[1].host = "gw.other.example" is not defined in [[peers]] and unknown_peers.accept_realms is empty, '
     "so it can never connect; add a [[peers]] with this host (connect = false if it connects to us) or its realm to "
     "unknown_peers.accept_realms"),
    (PRIMARY + '[[primary.partners]]\nhost = "GW.partner.example"\npartner_id = "partner-b"\n',
     'primary.partners[1].host = "GW.partner.example" is already listed by primary.partners[0]; list each partner gateway once'),
    (PRIMARY + '[[primary.partners]]\nhost = "gw.primary.example"\npartner_id = "self"\n',
     'primary.partners[1].host = "gw.primary.example" is this node\'s own node.origin_host'),
    (PRIMARY_HEAD + '[[primary.partners]]\nhost = "gw partner"\npartner_id = "partner-a"\n',
     'primary.partners[0].host = "gw partner" is not a Diameter identity'),
    (PRIMARY_HEAD + '[[primary.partners]]\npartner_id = "partner-a"\n',
     'primary.partners[0].host is missing; add host = "gw.partner.example"'),
    (PRIMARY_HEAD + '[[primary.partners]]\nhost = "gw.partner.example"\n',
     'primary.partners[0].partner_id is missing; add partner_id = "partner-a", the name its agreements have in the store'),
    (PRIMARY_HEAD + '[[primary.partners]]\nhost = "gw.partner.example"\npartner_id = "partner a"\n',
     "primary.partners[0].partner_id = \"partner a\" is not a valid name; use letters, digits, '.', '_' and '-' only"),
    (PRIMARY_HEAD + '[[primary.partners]]\nhost = "gw.partner.example"\npartner_id = ""\n',
     'primary.partners[0].partner_id = "" is not a valid name'),
    (PRIMARY_HEAD + '[[primary.partners]]\nhost = "gw.partner.example"\npartner_id = 7\n',
     'primary.partners[0].partner_id = 7 is an integer; use a name in quotes such as "partner-a"'),
    (PRIMARY + 'partner = "partner-a"\n', "primary.partners[0].partner is not a known key; did you mean partner_id?"),
    (PRIMARY_HEAD + '[primary]\nhide_topology = 1\n' + PARTNERS, "primary.hide_topology = 1 is an integer; use true or false"),
    (PRIMARY_HEAD + '[primary]\npartner = []\n' + PARTNERS, "primary.partner is not a known key; did you mean partners?"),
    # the HSS in this process, or elsewhere
    (PRIMARY_HEAD + '[primary]\nhss_realm = "primary.example"\n' + PARTNERS,
     'primary.hss_realm = "primary.example" is set but the hss role runs in this process; remove primary.hss_realm, '
     'or remove "hss" from node.role'),
    (PRIMARY_HEAD + '[primary]\nhss_host = "hss.primary.example"\n' + PARTNERS,
     'primary.hss_host = "hss.primary.example" is set but the hss role runs in this process; remove primary.hss_host'),
    (PRIMARY.replace('["primary", "hss"]', '"primary"'),
     'primary.hss_realm is missing; the hss role does not run in this process: add hss_realm = "primary.example" '
     '(the HSS\'s realm, with a [[routes]] to it) or add "hss" to node.role'),
    (PRIMARY_REMOTE_HSS.replace('hss_realm = "primary.example"', 'hss_realm = "hss.example"'),
     'primary.hss_realm = "hss.example" has no [[routes]] for application cx, so no MAR can reach the HSS; '
     'add [[routes]] with realm = "hss.example", action = "proxy", peers = ["hss.primary.example"] (a [[peers]] host)'),
    (PRIMARY_REMOTE_HSS.replace('action = "proxy"\npeers = ["hss.primary.example"]', 'action = "local"'),
     'routes[0].action = "local" routes primary.hss_realm "primary.example" to this node, where no hss role runs; '
     'use action = "proxy" with peers = ["hss.primary.example"], or add "hss" to node.role'),
    (PRIMARY_REMOTE_HSS.replace('hss_realm = "primary.example"', 'hss_realm = "hss example"'),
     'primary.hss_realm = "hss example" is not a Diameter identity'),
    (PRIMARY_REMOTE_HSS.replace("[[routes]]\n", "[[routes]]\napplication = 42\n").replace(
        'role = "primary"', 'role = "primary"\napplications = ["cx", 42]'),
     'primary.hss_realm = "primary.example" has no [[routes]] for application cx'),
]


@pytest.mark.parametrize(("text", "expected"), CX_RULES, ids=[r[1][:60] for r in CX_RULES])
def test_each_cx_rule_reports_path_value_and_fix(text, expected, pem_dir):
    error = one_error(text, base_dir=pem_dir)
    assert error.startswith("gateway.toml: ")
    assert expected in error
    assert "; " in error


def test_primary_with_the_hss_elsewhere(pem_dir):
    config = parse_config(PRIMARY_REMOTE_HSS, base_dir=pem_dir)
    assert config.node.roles == ("primary",) and config.hss is None
    assert config.primary is not None
    assert (config.primary.hss_realm, config.primary.hss_host) == ("primary.example", "hss.primary.example")
    # the default route reaches it too, through the relay application as well (RFC 6733 §2.4)
    for realm, app in (("*", "cx"), ("primary.example", "relay"), ("*", "relay")):
        text = (PRIMARY_REMOTE_HSS.replace('realm = "primary.example"\naction', f'realm = "{realm}"\napplication = "{app}"\naction')
                .replace('role = "primary"', 'role = "primary"\napplications = ["cx", "relay"]'))
        assert parse_config(text, base_dir=pem_dir).routes[0].realm == realm
    # hss_host is optional: the realm's route picks the HSS
    config = parse_config(PRIMARY_REMOTE_HSS.replace('hss_host = "hss.primary.example"\n', ""), base_dir=pem_dir)
    assert config.primary is not None and config.primary.hss_host is None


def test_primary_partner_admitted_by_its_realm(pem_dir):
    text = PRIMARY + '[[primary.partners]]\nhost = "gw.partner2.example"\npartner_id = "partner-b"\n' \
        '[unknown_peers]\naccept_realms = ["partner2.example"]\n'
    config = parse_config(text, base_dir=pem_dir)
    assert config.primary is not None
    assert [(p.host, p.partner_id) for p in config.primary.partners] == [
        ("gw.partner.example", "partner-a"), ("gw.partner2.example", "partner-b")]
    # two gateways of one partner share its partner_id
    text = PRIMARY.replace("connect = false", "connect = false\n[[peers]]\nhost = \"gw2.partner.example\"\n"
                           'realm = "partner.example"\nconnect = false') + \
        '[[primary.partners]]\nhost = "gw2.partner.example"\npartner_id = "partner-a"\n'
    assert parse_config(text, base_dir=pem_dir).primary.partner_id("gw2.partner.example") == "partner-a"


def test_role_errors_are_reported_together(pem_dir):
    text = PRIMARY_HEAD.replace('role = ["primary", "hss"]', 'role = "primary"\napplications = [42]') + """
[store]
target = "nodir/x.sqlite"
threads = 0
[partner]
[hss]
max_vectors = 0
[[primary.partners]]
host = "gw.partner.example"
partner_id = "a b"
"""
    errors = [e.removeprefix("gateway.toml: ").split(" = ")[0].split(" is ")[0] for e in errors_of(text, base_dir=pem_dir)]
    assert errors == [
        "store.target", "store.threads", "hss.max_vectors", "primary.partners[0].partner_id",
        "[hss]", "[partner]", "node.applications", "primary.hss_realm",
    ]  # no "primary.partners is missing": the one listed is wrong, and said so


def test_diff_role_sections_need_a_restart(pem_dir):
    old = parse_config(PRIMARY, base_dir=pem_dir)
    cases = {
        PRIMARY_HEAD + "[store]\nthreads = 8\ntarget = \"cxgw.sqlite\"\n" + PARTNERS: ("store",),
        PRIMARY_HEAD + "[hss]\nmax_vectors = 2\n" + PARTNERS: ("hss",),
        PRIMARY.replace("partner-a", "partner-z"): ("primary",),
        PRIMARY.replace('["primary", "hss"]', '["hss", "primary"]'): ("node",),
    }
    for text, sections in cases.items():
        result = diff(old, parse_config(text, base_dir=pem_dir))
        assert result.sections_changed == sections and result.restart_required == sections
    partner = parse_config(PARTNER, base_dir=pem_dir)
    result = diff(partner, parse_config(PARTNER + "[partner]\nrevocation_poll = 5\n", base_dir=pem_dir))
    assert result.sections_changed == result.restart_required == ("partner",)
    assert diff(old, parse_config(PRIMARY, base_dir=pem_dir)).empty


# --- the examples that run as shipped (what `cxgw gateway --check` does: load the file)


@pytest.mark.parametrize(("name", "roles"), [
    ("relay.toml", ("relay",)),
    ("primary-core.toml", ("primary", "hss")),
    ("partner-core.toml", ("partner",)),
])
def test_loopback_examples_load_as_shipped(name, roles):
    config = load_config(EXAMPLES / name)
    assert config.node.roles == roles
    assert config.tls is None and all(p.transport == "tcp" for p in config.peers)
    assert all(li.address == "127.0.0.1" and li.transport == "tcp" for li in config.listen)
    if roles != ("relay",):
        stem = name.removesuffix(".toml")
        assert config.store == cfg.StoreConfig(str((EXAMPLES / f"{stem}.sqlite").resolve()))


def test_loopback_examples_fit_together():
    primary = load_config(EXAMPLES / "primary-core.toml")
    partner = load_config(EXAMPLES / "partner-core.toml")
    assert (primary.node.origin_host, primary.node.origin_realm) == ("gw.primary.example", "primary.example")
    assert (partner.node.origin_host, partner.node.origin_realm) == ("gw.partner.example", "partner.example")
    # the partner connects to the primary's listener and knows it by its identity
    to_primary = partner.peer(primary.node.origin_host)
    assert to_primary is not None and to_primary.connect and to_primary.realm == primary.node.origin_realm
    assert (to_primary.address, to_primary.port) in {(li.address, li.port) for li in primary.listen}
    (route,) = [r for r in partner.routes if r.realm == primary.node.origin_realm]
    assert route.action == "proxy" and [t.host for t in route.peers] == [primary.node.origin_host]
    # the primary waits for the partner and serves it as partner-a
    from_partner = primary.peer(partner.node.origin_host)
    assert from_partner is not None and not from_partner.connect
    assert from_partner.realm == partner.node.origin_realm
    assert primary.primary is not None and primary.primary.partner_id(partner.node.origin_host) == "partner-a"
    assert primary.hss == cfg.HssConfig(5) and primary.primary.hss_realm is None
    # the S-CSCF reaches the partner on the Diameter port; metrics do not collide
    assert partner.listen[0].port == 3868 and partner.peer("scscf.partner.example").connect is False
    assert {primary.metrics.port, partner.metrics.port} == {9090, 9091}


def test_tls_examples_fit_together(tmp_path):
    for name in ("primary.toml", "partner.toml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    write_pems(tmp_path)
    primary = load_config(tmp_path / "primary.toml")
    partner = load_config(tmp_path / "partner.toml")
    to_primary = partner.peer(primary.node.origin_host)
    assert to_primary is not None and to_primary.transport == "tls" and to_primary.connect
    assert to_primary.port in {li.port for li in primary.listen if li.transport == "tls"}
    from_partner = primary.peer(partner.node.origin_host)
    assert from_partner is not None and from_partner.transport == "tls" and not from_partner.connect
    assert primary.primary is not None and primary.primary.partner_id("gw.partner.example") == "partner-a"
    assert primary.hss == cfg.HssConfig(5) and partner.partner == cfg.PartnerConfig(True, 1.0)
    assert any(r.realm == "primary.example" and r.peers[0].host == "gw.primary.example" for r in partner.routes)


def test_listen_reuse_port():
    assert parse_config(MINIMAL + "[[listen]]\nport = 0").listen[0].reuse_port is False
    config = parse_config(MINIMAL + "[[listen]]\nport = 3868\nreuse_port = true")
    assert config.listen == (cfg.ListenConfig("127.0.0.1", 3868, "tcp", reuse_port=True),)
    with pytest.raises(ConfigError, match=r"listen\[0\]\.reuse_port"):
        parse_config(MINIMAL + '[[listen]]\nreuse_port = "yes"')


# -- [capture] (captures.recorder, docs/captures.md) ------------------------------------------
def test_capture_section_defaults_and_values(tmp_path):
    assert parse_config(MINIMAL).capture is None
    capture = parse_config(MINIMAL + '[capture]\nfile = "cx.pcapng"\n', base_dir=tmp_path).capture
    assert capture == cfg.CaptureConfig(file=(tmp_path / "cx.pcapng").resolve())
    assert (capture.max_bytes, capture.max_seconds, capture.commands, capture.peers) == (0, 0.0, (), ())
    assert capture.keep_key_material is False and capture.buffer_messages == 10000
    (tmp_path / "logs").mkdir()
    capture = parse_config(MINIMAL + """
[capture]
file = "logs/cx.pcap"
max_bytes = 1000000
max_seconds = 3600
commands = ["MAR", "maa", 301, "UAR/UAA"]
peers = ["hss.primary.example", "127.0.0.1", "::1"]
keep_key_material = true
buffer_messages = 100
""", base_dir=tmp_path).capture
    assert capture.file == (tmp_path / "logs" / "cx.pcap").resolve()
    assert capture.max_bytes == 1000000 and capture.max_seconds == 3600.0
    assert capture.commands == (303, 301, 300)
    assert capture.peers == ("hss.primary.example", "127.0.0.1", "::1")
    assert capture.keep_key_material is True and capture.buffer_messages == 100


def test_capture_file_is_resolved_against_the_config_file(tmp_path):
    (tmp_path / "caps").mkdir()
    path = tmp_path / "gw.toml"
    path.write_text(MINIMAL + '[capture]\nfile = "caps/cx.pcap"\n')
    assert load_config(path).capture.file == (tmp_path / "caps" / "cx.pcap").resolve()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "capture.file is missing; add file ="),
        ('file = "cx.txt"', 'capture.file = "cx.txt" ends neither in .pcap nor in .pcapng; name the file "cx.pcapng"'),
        ('file = "no/such/dir/cx.pcap"', 'capture.file = "no/such/dir/cx.pcap" is not in an existing directory'),
        ("file = 3", "capture.file = 3 is not a file path; use a path in quotes"),
        ('file = "cx.pcap"\nmax_bytes = -1', "capture.max_bytes = -1 is out of range; use 0 or more"),
        ('file = "cx.pcap"\nmax_seconds = -5', "capture.max_seconds = -5 is not a valid duration"),
        ('file = "cx.pcap"\ncommands = ["MARS"]', 'capture.commands[0] = "MARS" is not a Diameter command; use a name such as "MAR"'),
        ('file = "cx.pcap"\npeers = ["not an id"]', 'capture.peers[0] = "not an id" is not a Diameter identity'),
        ('file = "cx.pcap"\nkeep_key_material = "yes"', 'capture.keep_key_material = "yes" is a string; use true or false'),
        ('file = "cx.pcap"\nbuffer_messages = 0', "capture.buffer_messages = 0 is out of range; use 1 or more"),
        ('file = "cx.pcap"\nmax_byte = 5', "capture.max_byte is not a known key; did you mean max_bytes?"),
    ],
)
def test_capture_errors_name_key_value_and_fix(body, expected, tmp_path):
    error = one_error(MINIMAL + "[capture]\n" + body + "\n", base_dir=tmp_path)
    assert expected in error, error


def test_diff_says_a_changed_capture_needs_a_restart(tmp_path):
    """The recording file is opened at start: a SIGHUP cannot move it (docs/captures.md)."""
    old = parse_config(MINIMAL, base_dir=tmp_path)
    new = parse_config(MINIMAL + '[capture]\nfile = "cx.pcapng"\n', base_dir=tmp_path)
    result = diff(old, new)
    assert result.sections_changed == ("capture",) and result.restart_required == ("capture",)
