"""Request routing (RFC 6733 §6): the routing table, the pending-request table, the
proxy's general path and the relay's hot loop over each read."""
