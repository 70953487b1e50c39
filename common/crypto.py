"""AES-256-GCM keyring: every ciphertext names its key id; old keys decrypt until removed."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

CIPHERTEXT_VERSION = "v1"


class EncryptionKeyError(RuntimeError):
    """The keyring is missing, malformed, or does not hold the key a ciphertext needs."""


@dataclass(frozen=True)
class Keyring:
    primary_key_id: str
    keys: dict[str, bytes]

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse "kid:base64key,kid2:base64key" (first entry is the primary)."""
        if not spec or not spec.strip():
            raise EncryptionKeyError(
                "BASTION_ENCRYPTION_KEYS is not set: credentials cannot be encrypted or decrypted. Set it to 'keyid:<base64 of 32 random bytes>'."
            )
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for entry in spec.split(","):
            entry = entry.strip()
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not key_id:
                raise EncryptionKeyError(f"BASTION_ENCRYPTION_KEYS entry '{key_id or entry[:8]}…' must look like 'keyid:base64key'.")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise EncryptionKeyError(f"BASTION_ENCRYPTION_KEYS key '{key_id}' is not valid base64.") from exc
            if len(raw) != 32:
                raise EncryptionKeyError(f"BASTION_ENCRYPTION_KEYS key '{key_id}' must be 32 bytes (AES-256), got {len(raw)}.")
            keys[key_id] = raw
            order.append(key_id)
        if not order:
            raise EncryptionKeyError("BASTION_ENCRYPTION_KEYS holds no key.")
        return cls(primary_key_id=order[0], keys=keys)

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.primary_key_id]).encrypt(nonce, plaintext, associated_data)
        return f"{CIPHERTEXT_VERSION}:{self.primary_key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, associated_data: bytes) -> bytes:
        version, key_id, payload = split_token(token)
        if key_id not in self.keys:
            raise EncryptionKeyError(
                f"Ciphertext was sealed with key id '{key_id}', which is not in BASTION_ENCRYPTION_KEYS. "
                "Restore that key (keep it beside the new primary until rotate_credentials_key has run)."
            )
        raw = base64.b64decode(payload)
        try:
            return AESGCM(self.keys[key_id]).decrypt(raw[:12], raw[12:], associated_data)
        except InvalidTag as exc:
            raise EncryptionKeyError(
                f"Decryption failed for key id '{key_id}': the key in BASTION_ENCRYPTION_KEYS is not the one "
                "this value was sealed with, or the value was tampered with or moved to another row."
            ) from exc


def split_token(token: str) -> tuple[str, str, str]:
    """Return (version, key id, payload) of a stored ciphertext."""
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != CIPHERTEXT_VERSION:
        raise EncryptionKeyError("Stored value is not a Bastion ciphertext (expected 'v1:<keyid>:<data>').")
    return parts[0], parts[1], parts[2]


@lru_cache(maxsize=4)
def _keyring_for(spec: str) -> Keyring:
    return Keyring.parse(spec)


def get_keyring() -> Keyring:
    """Return the keyring configured by BASTION_ENCRYPTION_KEYS."""
    return _keyring_for(settings.BASTION_ENCRYPTION_KEYS)


def encrypt_json(value: object, associated_data: str) -> str:
    return get_keyring().encrypt(json.dumps(value).encode(), associated_data.encode())


def decrypt_json(token: str, associated_data: str) -> object:
    return json.loads(get_keyring().decrypt(token, associated_data.encode()))


def generate_key() -> str:
    """Return a fresh base64 AES-256 key."""
    return base64.b64encode(os.urandom(32)).decode()
