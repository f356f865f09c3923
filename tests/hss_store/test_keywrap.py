from __future__ import annotations

import os

import pytest

from hss_store.errors import InvalidKey, MasterKeyMismatch
from hss_store.keywrap import MasterKey


def test_wrap_round_trip_and_randomised():
    key = MasterKey(os.urandom(32))
    a, b = key.wrap(b"k" * 16, "alice k"), key.wrap(b"k" * 16, "alice k")
    assert a != b and b"k" * 16 not in a
    assert key.unwrap(a, "alice k") == b"k" * 16


def test_context_binds_the_row_and_column():
    key = MasterKey(os.urandom(32))
    wrapped = key.wrap(b"k" * 16, "alice k")
    with pytest.raises(InvalidKey, match="does not decrypt"):
        key.unwrap(wrapped, "bob k")


def test_wrong_master_key():
    wrapped = MasterKey(os.urandom(32)).wrap(b"x", "c")
    with pytest.raises(InvalidKey, match="does not decrypt"):
        MasterKey(os.urandom(32)).unwrap(wrapped, "c")


def test_check_value():
    key = MasterKey(os.urandom(32))
    key.verify_check_value(key.check_value())
    with pytest.raises(MasterKeyMismatch, match="does not match"):
        MasterKey(os.urandom(32)).verify_check_value(key.check_value())


@pytest.mark.parametrize("text, fragment", [("00" * 16, "32 bytes"), ("zz", "hexadecimal")])
def test_bad_master_keys(text, fragment):
    with pytest.raises(InvalidKey, match=fragment):
        MasterKey.from_hex(text)


def test_from_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "mk"
    path.write_text("ab" * 32 + "\n")
    assert MasterKey.from_file(path) is not None
    with pytest.raises(InvalidKey, match="cannot read"):
        MasterKey.from_file(tmp_path / "missing")
    monkeypatch.delenv("CXGW_MASTER_KEY", raising=False)
    assert MasterKey.from_environment() is None
    monkeypatch.setenv("CXGW_MASTER_KEY", "cd" * 32)
    assert repr(MasterKey.from_environment()) == "MasterKey(<hidden>)"


def test_not_a_wrapped_value():
    with pytest.raises(InvalidKey, match="not a wrapped value"):
        MasterKey(os.urandom(32)).unwrap(b"\x00" * 40, "alice k")
