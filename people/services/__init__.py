"""Writes of the people directory: the merge across sources, recomputation under the source priority, erasure suppressions."""

from people.services.merge import (
    MergeResult,
    people_link_managers,
    people_mark_source_deleted,
    people_merge,
    people_overlong_fields,
    people_priority,
    people_recompute,
    people_settings_update,
    people_tables_analyze,
)
from people.services.suppression import (
    email_digests,
    normalize_email,
    people_unsuppressed,
    source_key,
    suppression_digest,
    suppression_filter,
    suppressions_add,
)

__all__ = [
    "MergeResult",
    "email_digests",
    "normalize_email",
    "people_link_managers",
    "people_mark_source_deleted",
    "people_merge",
    "people_overlong_fields",
    "people_priority",
    "people_recompute",
    "people_settings_update",
    "people_tables_analyze",
    "people_unsuppressed",
    "source_key",
    "suppression_digest",
    "suppression_filter",
    "suppressions_add",
]
