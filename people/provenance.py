"""A person's provenance stored packed: each source record named once, each field pointing at it with its value.

Field by field ({value, source, integration_id, external_id, at} seven times over) it was 1.4 kB of a 1.7 kB person row; packed
it is about a quarter of that, which is a quarter of the heap and WAL a large import writes. Readers never see the packed form:
the model field unpacks on load, and a row written before packing existed (or by hand) reads as it is.
"""

from __future__ import annotations

from typing import Any

ORIGINS_KEY = "_origins"  # not a Person field name, so it cannot collide with a field's entry
_ORIGIN_KEYS = frozenset(("value", "source", "integration_id", "external_id", "at"))


def provenance_packed(provenance: Any) -> Any:
    """{field: {value, source, integration_id, external_id, at}} → {"_origins": [[source, integration id, external id, at]], field: [i, value]}."""
    if not isinstance(provenance, dict) or not provenance or ORIGINS_KEY in provenance:
        return provenance
    origins: dict[tuple, int] = {}
    packed: dict[str, Any] = {}
    for name, entry in provenance.items():
        if isinstance(entry, dict) and entry.keys() == _ORIGIN_KEYS:
            origin = (entry["source"], entry["integration_id"], entry["external_id"], entry["at"])
            index = origins.setdefault(origin, len(origins))
            packed[name] = [index, entry["value"]]
        else:
            packed[name] = entry  # another shape (the manager's entry): kept as it is
    if not origins:
        return provenance
    packed[ORIGINS_KEY] = [list(origin) for origin in origins]
    return packed


def provenance_unpacked(stored: Any) -> Any:
    """The packed form back to {field: {value, source, integration_id, external_id, at}}; any other value is returned as it is."""
    if not isinstance(stored, dict) or ORIGINS_KEY not in stored:
        return stored
    origins = stored[ORIGINS_KEY]
    unpacked: dict[str, Any] = {}
    for name, entry in stored.items():
        if name == ORIGINS_KEY:
            continue
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and 0 <= entry[0] < len(origins):
            source, integration_id, external_id, at = origins[entry[0]]
            unpacked[name] = {"value": entry[1], "source": source, "integration_id": integration_id, "external_id": external_id, "at": at}
        else:
            unpacked[name] = entry
    return unpacked
