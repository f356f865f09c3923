"""Migration agreements on the primary side (TR 23.781 step 8 and the primary role).

A partner system may migrate a user when one of its agreements covers the user: an
agreement for ``all`` users, for the ``user`` (by real IMPI), or for a ``group`` the
subscriber belongs to. No agreement, no binding and no vectors: the primary never
serves a partner that has no agreement for the user (docs/architecture.md, the primary role).
"""

from __future__ import annotations

from collections.abc import Iterable

from hss_store.errors import NoAgreement
from hss_store.records import Agreement


def covering_agreement(agreements: Iterable[Agreement], impi: str, groups: Iterable[str]) -> Agreement | None:
    """The first agreement that covers the user, or None."""
    groups = tuple(groups)
    for agreement in agreements:
        if agreement.covers(impi, groups):
            return agreement
    return None


def no_agreement(partner_id: str, impi: str) -> NoAgreement:
    return NoAgreement(
        f"partner {partner_id!r} has no migration agreement covering user {impi!r}; "
        f"add one with: cxgw provision agreement add {partner_id} --user {impi} (or --all, --group G)"
    )
