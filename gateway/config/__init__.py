"""The node's configuration: one TOML file, parsed into frozen dataclasses, checked at start.

Every rule is checked and every broken one reported, all together, in one
:class:`ConfigError` whose lines name the key path, the bad value and the fix::

    gateway.toml: peers[1].port = 70000 is not a TCP port; use 1-65535

Array indexes in key paths count from 0, in file order (``peers[0]`` is the first
``[[peers]]``). Unknown keys are errors too (a typo must not silently fall back to a
default). Relative TLS file paths are resolved against the directory of the file.

Sections (``gateway/examples/*.toml`` shows them all): ``[node]``, ``[[listen]]``,
``[tls]``, ``[timers]``, ``[limits]``, ``[[peers]]``, ``[unknown_peers]``, ``[[routes]]``,
``[metrics]``, ``[logging]``. :func:`diff` compares two configurations for a reload
(SIGHUP): which peers and routes were added, removed or changed.
"""

from gateway.config.checks import is_diameter_identity
from gateway.config.load import ConfigDiff, diff, load_config, parse_config
from gateway.config.schema import (
    APPLICATIONS,
    DIAMETER_PORT,
    DIAMETER_TLS_PORT,
    Application,
    ConfigError,
    GatewayConfig,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    MetricsConfig,
    NodeConfig,
    PeerConfig,
    RouteConfig,
    RouteTargetConfig,
    TimersConfig,
    TlsConfig,
    UnknownPeersConfig,
    application_for,
)

__all__ = [
    "APPLICATIONS",
    "DIAMETER_PORT",
    "DIAMETER_TLS_PORT",
    "Application",
    "ConfigDiff",
    "ConfigError",
    "GatewayConfig",
    "LimitsConfig",
    "ListenConfig",
    "LoggingConfig",
    "MetricsConfig",
    "NodeConfig",
    "PeerConfig",
    "RouteConfig",
    "RouteTargetConfig",
    "TimersConfig",
    "TlsConfig",
    "UnknownPeersConfig",
    "application_for",
    "diff",
    "is_diameter_identity",
    "load_config",
    "parse_config",
]
