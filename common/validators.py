"""Checks on untrusted text that never backtrack: e-mail addresses by splitting, with length caps before any work; UUIDs."""

from __future__ import annotations

import uuid
from typing import Any

# RFC 5321 limits: 64 octets of local part, 255 of domain, 254 for a whole forward path address.
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
MAX_DOMAIN_LABEL_LENGTH = 63
# Characters that end an address in the places Bastion reads them (lists, headers, CSV cells): never part of one.
_FORBIDDEN = frozenset(' \t\r\n\x0b\x0c,;<>()[]\\"@\x00')


def is_email_address(value: str) -> bool:
    """True for `local@domain.tld`: one "@", no spaces or separators, a dotted domain; linear time, length-capped first."""
    if not isinstance(value, str) or not 3 <= len(value) <= MAX_EMAIL_LENGTH:
        return False
    local, at, domain = value.partition("@")
    if not at or not local or len(local) > MAX_LOCAL_PART_LENGTH or not domain:
        return False
    if any(char in _FORBIDDEN or char.isspace() or ord(char) < 32 for char in local) or "@" in domain:
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not label or len(label) > MAX_DOMAIN_LABEL_LENGTH or label.startswith("-") or label.endswith("-"):
            return False
        if any(char in _FORBIDDEN or char.isspace() or ord(char) < 32 for char in label):
            return False
    return True


def is_uuid(value: Any) -> bool:
    """True when `value` reads as a UUID (an id from a URL, a form or a file), so a lookup by it cannot fail on the database."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
