"""Real third-party Diameter nodes started as child processes, for interop tests and the
bench (freeDiameter: :mod:`gateway.interop.freediameter`)."""
