"""The configuration's schema: constants and frozen dataclasses (see gateway.config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DIAMETER_PORT = 3868  # RFC 6733 §2.1: IANA "diameter" over TCP
DIAMETER_TLS_PORT = 5658  # RFC 6733 §2.1: IANA "diameters", TLS from the first byte
UINT32_MAX = 2**32 - 1  # Unsigned32 AVPs: Vendor-Id, Firmware-Revision, Origin-State-Id
MESSAGE_SIZE_MIN = 4096  # below this a CER with a few Host-IP-Address AVPs may not fit
MESSAGE_SIZE_MAX = 2**24 - 1  # RFC 6733 §3: Message Length is 24 bits
METRICS_PORT = 9090  # a Prometheus convention, not a registered port
TWINIT_MINIMUM = 6  # RFC 3539 §3.4.1: Twinit MUST NOT be set lower than 6 s

ROLES = ("relay", "partner", "primary", "hss")
CX_ROLES = ("hss", "partner", "primary")  # the roles that serve Cx (TS 29.229) from a SIP database
STORE_DEFAULT_FILE = "cxgw.sqlite"  # the embedded SQLite store, next to the configuration file
POSTGRES_SCHEMES = ("postgresql://", "postgres://")  # a [store] target taken as a URL, as is
MAX_BINDINGS_IN_MEMORY = 50_000_000  # [partner]/[primary] bindings_in_memory: about 11.5 GB at most
MAX_VECTORS_MAX = 32  # SIP-Auth-Data-Items per MAA (TS 29.228 §6.3.1 lets the HSS cap the number)
STORE_THREADS_MAX = 64
TRANSPORTS = ("tcp", "tls")
ROUTE_ACTIONS = ("proxy", "relay", "local")  # RFC 6733 §2.8: local, relay, proxy (no redirect)
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
DEFAULT_ROUTE_REALM = "*"


class ConfigError(Exception):
    """The configuration is unusable; ``errors`` holds one line per broken rule."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Application:
    """A Diameter application as advertised in CER/CEA (RFC 6733 §5.3)."""

    name: str
    application_id: int
    vendor_id: int  # 0 for IETF applications; advertised in Vendor-Specific-Application-Id


# Application names the configuration understands; raw integers are accepted too.
APPLICATIONS: dict[str, Application] = {
    "cx": Application("cx", 16777216, 10415),  # TS 29.229 §6: Cx, 3GPP vendor 10415
    "relay": Application("relay", 0xFFFFFFFF, 0),  # RFC 6733 §2.4: the relay application
}
_APPLICATIONS_BY_ID = {app.application_id: app for app in APPLICATIONS.values()}


def application_for(value: str | int) -> Application | None:
    """The application a config value names ("cx" or an Application-Id), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if 0 <= value <= UINT32_MAX:
            return _APPLICATIONS_BY_ID.get(value) or Application(str(value), value, 0)
        return None
    return APPLICATIONS.get(value.lower()) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """``[node]``: what this node says about itself in CER/CEA (RFC 6733 §5.3.1)."""

    origin_host: str
    origin_realm: str
    roles: tuple[str, ...] = ("relay",)  # one or several of ROLES; "relay" only alone
    product_name: str = "cxgw"
    vendor_id: int = 0
    firmware_revision: int | None = None
    host_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    applications: tuple[Application, ...] = (APPLICATIONS["cx"],)
    origin_state_id: int = 0  # RFC 6733 §8.16; derived from the start time unless set


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """One ``[[listen]]``: a local address where peers may connect to us."""

    address: str = "127.0.0.1"
    port: int = DIAMETER_PORT  # 0: the OS picks one (tests)
    transport: str = "tcp"
    reuse_port: bool = False  # SO_REUSEPORT: several processes listen on one port, the kernel spreads connections


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """``[tls]``: our certificate and the CAs we trust (RFC 6733 §13, mutual auth)."""

    certificate: Path
    private_key: Path
    ca_certificates: tuple[Path, ...]
    verify_peer_identity: bool = True  # the peer certificate must name its Diameter identity


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """``[timers]``, in seconds."""

    tc: float = 30.0  # RFC 6733 §2.1: reconnect interval
    twinit: float = 30.0  # RFC 3539 §3.4.1: watchdog interval, at least 6
    tx: float = 4.0  # how long a forwarded request waits for its answer
    dpa_timeout: float = 5.0  # RFC 6733 §5.4: wait for DPA before closing anyway
    cea_timeout: float = 10.0  # RFC 6733 §5.6: Wait-Conn-Ack / Wait-I-CEA give-up time
    busy_hold: float = 300.0  # DPR cause BUSY: do not reconnect for this long
    do_not_want_to_talk_hold: float = 3600.0  # DPR cause DO_NOT_WANT_TO_TALK_TO_YOU
    close_grace: float = 2.0  # shutdown: a closing connection's time to end with FIN, then reset


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """``[limits]``: bounds that keep an overloaded node answering (3004/3002, not OOM)."""

    max_pending_per_peer: int = 10000
    max_pending: int = 100000
    max_message_size: int = 65536
    max_connections: int = 1000  # accepted connections; configured peers' are not counted
    max_awaiting_cer: int = 64  # accepted connections still to send their CER (oldest dropped)
    max_accept_rate: int = 200  # new connections accepted per second, bursts of max_awaiting_cer
    max_cer_size: int = 8192  # bytes of the first message on an accepted connection
    max_unknown_peers: int = 256  # peers admitted by [unknown_peers] accept_realms at once
    duplicate_cache_size: int = 10000  # RFC 6733 §6.1.9 duplicate detection (0 = off)
    duplicate_ttl: float = 60.0


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One ``[[peers]]``: a known peer, by its Diameter identity (Origin-Host)."""

    host: str
    realm: str
    address: str  # IP address or resolvable name; defaults to host
    port: int
    transport: str = "tcp"
    connect: bool = True  # we initiate (RFC 6733 §5.6 election applies when both do)
    tls_name: str = ""  # the name its certificate must carry; defaults to host
    applications: tuple[Application, ...] | None = None  # None: whatever [node] lists


@dataclass(frozen=True, slots=True)
class UnknownPeersConfig:
    """``[unknown_peers]``: incoming peers not in [[peers]] (RFC 6733 §5.3 policy)."""

    accept_realms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteTargetConfig:
    """A next hop of a route: lower priority is preferred, weight splits equal priorities."""

    host: str
    priority: int = 1
    weight: int = 100


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One ``[[routes]]``: a Realm-based routing table entry (RFC 6733 §2.7)."""

    realm: str  # "*" is the default route
    application: Application
    action: str
    peers: tuple[RouteTargetConfig, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        """(realm, Application-Id): unique in a configuration."""
        return (self.realm.lower(), self.application.application_id)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: where /metrics and /health are served (absent section: nowhere)."""

    address: str = "127.0.0.1"
    port: int = 9090  # METRICS_PORT


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """``[logging]``."""

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: the SIP database of the hss, partner and primary roles (hss_store)."""

    # An SQLite file path (relative paths resolved against the config file's directory, so
    # absolute here) or a postgresql:// URL, as given.
    target: str
    deadline: float = 2.0  # seconds a PostgreSQL call may take; below timers.tx
    threads: int = 4  # threads calling a PostgreSQL store (1-64)


@dataclass(frozen=True, slots=True)
class HssConfig:
    """``[hss]``: the primary SIP database's answers (TS 29.228 §6.3)."""

    max_vectors: int = 5  # SIP-Auth-Data-Items per MAA at most (1-32; more asked for is capped)


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """``[partner]``: the partner role (HSS of migrated users for the partner's S-CSCFs)."""

    # The forwarded MAR carries this gateway's Origin-Host/Realm and Session-Id, no
    # Route-Record (RFC 6733 §6.1.9 would otherwise name the partner's S-CSCF).
    hide_topology: bool = True
    revocation_poll: float = 1.0  # seconds between looks at the store's binding change log
    # active inbound bindings held packed in memory, read at start (about 230 bytes each;
    # gateway/applications/packed.py); the others are read from the store when asked for
    bindings_in_memory: int = 2_000_000


@dataclass(frozen=True, slots=True)
class PartnerPeerConfig:
    """One ``[[primary.partners]]``: a partner gateway peer and its hss_store partner_id."""

    host: str  # the peer's Diameter identity (Origin-Host, RFC 6733 §6.3)
    partner_id: str  # as in `cxgw provision agreement add <partner_id> ...`


@dataclass(frozen=True, slots=True)
class PrimaryConfig:
    """``[primary]``: the primary role, facing partner gateways across the interconnect."""

    partners: tuple[PartnerPeerConfig, ...] = ()
    # The MAA sent back to the partner carries our Origin-Host/Realm, not the HSS's.
    hide_topology: bool = True
    hss_realm: str | None = None  # where the HSS is when the hss role does not run in this process
    hss_host: str | None = None  # its Destination-Host (RFC 6733 §6.5), when one HSS is meant
    # seconds between looks at the store's change logs of bindings and agreements (the
    # outbound bindings and agreements held in memory; SQLite stores only)
    revocation_poll: float = 1.0
    # active outbound bindings held packed in memory, read at start (SQLite stores only)
    bindings_in_memory: int = 2_000_000

    def partner_id(self, host: str) -> str | None:
        """The partner_id of a partner gateway (case-insensitive Origin-Host), or None."""
        wanted = host.lower()
        return next((p.partner_id for p in self.partners if p.host.lower() == wanted), None)


CAPTURE_SUFFIXES = (".pcap", ".pcapng")  # classic libpcap, or pcapng (with comments)


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """``[capture]``: record the Diameter messages of every connection (captures.recorder)."""

    file: Path  # resolved against the configuration file's directory; .pcap or .pcapng
    max_bytes: int = 0  # start a new file past this size (0: never)
    max_seconds: float = 0.0  # start a new file after this long (0: never)
    commands: tuple[int, ...] = ()  # Command-Codes to record (empty: all)
    peers: tuple[str, ...] = ()  # peers to record, by Diameter identity or IP address (empty: all)
    keep_key_material: bool = False  # record SIP-Authenticate/-Authorization, CK, IK as they are
    buffer_messages: int = 10000  # reads and writes queued for the writer; more are dropped and counted


PROVISIONING_PORT = 8780  # not a registered port; beside the metrics one in examples
PROVISIONING_TOKEN_MIN = 16  # characters of the bearer token at least (RFC 6750 §5.2: not guessable)


@dataclass(frozen=True, slots=True)
class ProvisioningTlsConfig:
    """``[provisioning.tls]``: HTTPS for the provisioning API, optionally mutual."""

    certificate: Path
    private_key: Path
    ca_certificates: tuple[Path, ...] = ()  # CAs of the clients' certificates
    require_client_certificate: bool = False  # mutual TLS: a client without a certificate of these CAs is refused


@dataclass(frozen=True, slots=True)
class ProvisioningConfig:
    """``[provisioning]``: the provisioning API (gateway.provisioning, docs/provisioning.md)."""

    token_file: Path  # the bearer token (RFC 6750), one line; resolved against the config's directory
    address: str = "127.0.0.1"
    port: int = PROVISIONING_PORT  # 0: the OS picks one (tests)
    tls: ProvisioningTlsConfig | None = None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole, validated configuration."""

    source: str
    node: NodeConfig
    listen: tuple[ListenConfig, ...] = ()
    tls: TlsConfig | None = None
    timers: TimersConfig = TimersConfig()
    limits: LimitsConfig = LimitsConfig()
    peers: tuple[PeerConfig, ...] = ()
    unknown_peers: UnknownPeersConfig = UnknownPeersConfig()
    routes: tuple[RouteConfig, ...] = ()
    metrics: MetricsConfig | None = None
    logging: LoggingConfig = LoggingConfig()
    # Set iff a role needs it: store for any of CX_ROLES (the embedded SQLite default when
    # [store] is absent), hss/partner/primary iff that role is in node.roles.
    store: StoreConfig | None = None
    hss: HssConfig | None = None
    partner: PartnerConfig | None = None
    primary: PrimaryConfig | None = None
    capture: CaptureConfig | None = None
    provisioning: ProvisioningConfig | None = None

    def peer(self, host: str) -> PeerConfig | None:
        """The configured peer with this Diameter identity (case-insensitive), or None."""
        wanted = host.lower()
        return next((peer for peer in self.peers if peer.host.lower() == wanted), None)
