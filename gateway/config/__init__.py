"""The node's configuration: one TOML file, parsed into frozen dataclasses, checked at start.

Every rule is checked and every broken one reported, all together, in one
:class:`ConfigError` whose lines name the key path, the bad value and the fix::

    gateway.toml: peers[1].port = 70000 is not a TCP port; use 1-65535

Array indexes in key paths count from 0, in file order (``peers[0]`` is the first
``[[peers]]``). Unknown keys are errors too (a typo must not silently fall back to a
default). Relative TLS file paths and SQLite store paths are resolved against the
directory of the file.

Sections (``gateway/examples/*.toml`` shows them all): ``[node]``, ``[[listen]]``,
``[tls]``, ``[timers]``, ``[limits]``, ``[[peers]]``, ``[unknown_peers]``, ``[[routes]]``,
``[metrics]``, ``[logging]``, ``[capture]`` (docs/captures.md), ``[provisioning]``
(docs/provisioning.md), and for the Cx roles (``node.role``: ``"relay"`` alone, or
one or several of ``"hss"``, ``"partner"``, ``"primary"``) ``[store]``, ``[hss]``,
``[partner]``, ``[primary]`` with ``[[primary.partners]]``. ``GatewayConfig.store`` is set
whenever a Cx role runs (the embedded SQLite file ``cxgw.sqlite`` next to the configuration
when ``[store]`` is absent); ``hss``, ``partner`` and ``primary`` are set exactly when
``node.roles`` holds that role. :func:`diff` compares two configurations for a reload
(SIGHUP): which peers and routes were added, removed or changed.
"""

from gateway.config.checks import is_diameter_identity
from gateway.config.load import ConfigDiff, diff, load_config, parse_config
from gateway.config.schema import (
    APPLICATIONS,
    CX_ROLES,
    DIAMETER_PORT,
    DIAMETER_TLS_PORT,
    ROLES,
    Application,
    CaptureConfig,
    ConfigError,
    GatewayConfig,
    HssConfig,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    MetricsConfig,
    NodeConfig,
    PartnerConfig,
    PartnerPeerConfig,
    PeerConfig,
    PrimaryConfig,
    ProvisioningConfig,
    ProvisioningTlsConfig,
    RouteConfig,
    RouteTargetConfig,
    StoreConfig,
    TimersConfig,
    TlsConfig,
    UnknownPeersConfig,
    application_for,
)

__all__ = [
    "APPLICATIONS",
    "CX_ROLES",
    "DIAMETER_PORT",
    "DIAMETER_TLS_PORT",
    "ROLES",
    "Application",
    "CaptureConfig",
    "ConfigDiff",
    "ConfigError",
    "GatewayConfig",
    "HssConfig",
    "LimitsConfig",
    "ListenConfig",
    "LoggingConfig",
    "MetricsConfig",
    "NodeConfig",
    "PartnerConfig",
    "PartnerPeerConfig",
    "PeerConfig",
    "PrimaryConfig",
    "ProvisioningConfig",
    "ProvisioningTlsConfig",
    "RouteConfig",
    "RouteTargetConfig",
    "StoreConfig",
    "TimersConfig",
    "TlsConfig",
    "UnknownPeersConfig",
    "application_for",
    "diff",
    "is_diameter_identity",
    "load_config",
    "parse_config",
]
