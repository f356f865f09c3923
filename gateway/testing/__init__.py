"""Test support, shipped for the project's own tests and benchmarks (as go-diameter's
diamtest): a loopback network of nodes, a freeDiameter runner, a throwaway PKI."""
