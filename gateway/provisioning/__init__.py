"""The provisioning API: HTTP JSON (twisted.web) over the SIP database's provisioning actions.

``routes`` is the table of resources under ``/v1/`` (no HTTP), ``http`` the twisted.web
resource (bearer token, JSON bodies, error bodies, one log line per request), ``server``
what ``cxgw gateway`` starts when ``[provisioning]`` is configured (its own store
connection, HTTP or HTTPS with optional client certificates). The actions themselves are
:mod:`hss_store.operations`, shared with ``cxgw provision``. The contract is
docs/openapi.json, served at ``/v1/openapi.json``; docs/provisioning.md explains it.
"""
