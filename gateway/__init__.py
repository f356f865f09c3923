"""The Cx interconnect gateway: Diameter node, Cx applications, CLI (Twisted, asyncio reactor)."""
