"""Protection at rest of K and OPc with a master key (AES-256-GCM, NIST SP 800-38D).

A wrapped value is ``b"\\x01" || nonce (12) || ciphertext || tag (16)``. The associated
data binds it to its row and column (``impi`` and ``"k"`` or ``"opc"``), so swapping
wrapped keys between subscribers or between columns fails to decrypt instead of
silently authenticating the wrong user. The nonce is random (96 bits): far below the
2^32 wraps per key that SP 800-38D §8.3 allows for random nonces.

The master key itself never enters the database; a *check value* (a wrap of a fixed
string) does, so that opening a store with the wrong master key fails at once with
:class:`MasterKeyMismatch` rather than on the first MAR.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hss_store.errors import InvalidKey, MasterKeyMismatch

VERSION = 1
MASTER_KEY_LENGTH = 32
_NONCE = 12
_CHECK_PLAINTEXT = b"cxgw hss_store master key check"
ENV_VAR = "CXGW_MASTER_KEY"


class MasterKey:
    """An AES-256-GCM key that wraps and unwraps K and OPc."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != MASTER_KEY_LENGTH:
            size = len(key) if isinstance(key, bytes) else type(key).__name__
            raise InvalidKey(
                f"master key must be {MASTER_KEY_LENGTH} bytes ({MASTER_KEY_LENGTH * 2} hex digits), "
                f"got {size}; generate one with: python -c 'import os; print(os.urandom(32).hex())'"
            )
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    @classmethod
    def from_hex(cls, text: str) -> MasterKey:
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError as exc:
            raise InvalidKey(f"master key is not hexadecimal ({exc}); give 64 hex digits") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        try:
            return cls.from_hex(Path(path).read_text(encoding="ascii"))
        except OSError as exc:
            raise InvalidKey(f"cannot read master key file {str(path)!r}: {exc.strerror}") from None

    @classmethod
    def from_environment(cls) -> MasterKey | None:
        """The key in ``$CXGW_MASTER_KEY`` (hex), or None when the variable is unset."""
        text = os.environ.get(ENV_VAR)
        return cls.from_hex(text) if text else None

    def wrap(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return bytes([VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        if len(wrapped) < 1 + _NONCE + 16 or wrapped[0] != VERSION:
            raise InvalidKey(
                f"{context}: stored key is not a wrapped value (version {wrapped[:1].hex() or 'none'}); "
                "was the store written without a master key?"
            )
        try:
            return self._aead.decrypt(wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :], context.encode())
        except InvalidTag:
            raise InvalidKey(
                f"{context}: stored key does not decrypt with this master key "
                "(wrong master key, or the row was altered or copied from another subscriber)"
            ) from None

    def check_value(self) -> bytes:
        return self.wrap(_CHECK_PLAINTEXT, "master-key-check")

    def verify_check_value(self, value: bytes) -> None:
        try:
            self.unwrap(value, "master-key-check")
        except InvalidKey:
            raise MasterKeyMismatch(
                "the master key given does not match the one this store's keys were wrapped with; "
                f"pass the original key (--master-key-file or ${ENV_VAR})"
            ) from None
