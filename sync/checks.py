"""System checks of the sync app that need the database (run by `check --database` and after `rotate_credentials_key`)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError


@checks.register(checks.Tags.database)
def suppression_keys_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Erasure suppressions are keyed digests: say which keys they need, and warn when one is gone from the keyring."""
    if not databases:
        return []
    from common.crypto import get_keyring
    from people.models import SuppressedIdentity

    keyring = get_keyring()
    messages: list[checks.CheckMessage] = []
    counts: dict[str, int] = {}
    try:
        # `migrate` runs database checks before it creates tables: a database without this one has no suppressions yet.
        key_ids = list(SuppressedIdentity.objects.order_by().values_list("key_id", flat=True))
    except DatabaseError:
        return []
    for key_id in key_ids:
        counts[key_id] = counts.get(key_id, 0) + 1
    for key_id, count in sorted(counts.items()):
        if key_id not in keyring.keys:
            messages.append(
                checks.Warning(
                    f"{count} erasure suppression(s) were made with encryption key '{key_id}', which is no longer in BASTION_ENCRYPTION_KEYS: "
                    "they no longer keep those erased people from being re-imported.",
                    hint=f"Add key '{key_id}' back to BASTION_ENCRYPTION_KEYS (after the primary key); suppressions cannot be re-keyed.",
                    id="sync.W001",
                )
            )
        elif key_id != keyring.primary_key_id:
            messages.append(
                checks.Info(
                    f"{count} erasure suppression(s) use the retired key '{key_id}': keep it in BASTION_ENCRYPTION_KEYS while they exist.",
                    id="sync.I001",
                )
            )
    return messages
