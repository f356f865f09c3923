"""Diameter transport connections (RFC 6733 §2.1): stream framing (sans-IO), the Twisted
protocol of one TCP or TLS connection, and the TLS policy (RFC 6733 §13)."""
