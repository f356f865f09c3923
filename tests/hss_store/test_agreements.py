from __future__ import annotations

import pytest

from hss_store.agreements import covering_agreement, no_agreement
from hss_store.errors import InvalidIdentity, InvalidRequest, NoAgreement
from hss_store.records import Agreement


def test_covering_agreement():
    agreements = [Agreement("p", "group", "fire"), Agreement("p", "user", "a@x.net")]
    assert covering_agreement(agreements, "a@x.net", []) == agreements[1]
    assert covering_agreement(agreements, "b@x.net", ["fire"]) == agreements[0]
    assert covering_agreement(agreements, "b@x.net", ["police"]) is None
    assert covering_agreement([Agreement("p", "all")], "anyone@x.net", []) is not None


def test_agreement_validation():
    with pytest.raises(InvalidRequest, match="scope"):
        Agreement("p", "some")
    with pytest.raises(InvalidRequest, match="no value"):
        Agreement("p", "all", "x")
    with pytest.raises(InvalidIdentity):
        Agreement("p", "user", "not-an-impi")
    with pytest.raises(InvalidRequest, match="partner id"):
        Agreement("two words", "all")


def test_no_agreement_message_names_partner_user_and_fix():
    error = no_agreement("partnerA", "a@x.net")
    assert isinstance(error, NoAgreement)
    assert "partnerA" in str(error) and "a@x.net" in str(error) and "agreement add" in str(error)
