"""What an operator sees of the node: logs, message counts, Prometheus metrics and the
HTTP endpoints (/metrics, /health)."""
