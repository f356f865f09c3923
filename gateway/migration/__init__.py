"""The configuration-management side of a migration, TR 23.781 solution 2 steps 1-13.

``flow`` (the primary CM: states, steps and compensation, no I/O), ``directory`` (the
partners file), ``coverage`` (areas and the UE's location), ``client`` (the access request
to a partner's provisioning API over HTTPS), ``cli`` (`cxgw migrate`). docs/migration.md
has the whole procedure.
"""
