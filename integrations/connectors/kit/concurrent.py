"""Independent vendor calls of one action run side by side: per-item lookups, one message per recipient.

Each call runs in a copy of the caller's context, so the trace and the log fields of the step follow it into the pool, and
the call log is written by the calling thread afterwards (integrations.call_records): helper threads never
touch the database.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from integrations.call_records import call_records_deferred
from integrations.connectors.base import ActionResult

T = TypeVar("T")
R = TypeVar("R")


def map_concurrently(call: Callable[[T], R], items: Iterable[T], *, limit: int) -> list[R | Exception]:
    """`call` over `items` on at most `limit` threads; results in order, an exception in place of its item's result."""
    items = list(items)

    def guarded(item: T) -> R | Exception:
        try:
            return call(item)
        except Exception as exc:  # noqa: BLE001 - returned per item; the caller decides what fails
            return exc

    if len(items) <= 1 or limit <= 1:
        return [guarded(item) for item in items]
    with call_records_deferred(), ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="vendor-call") as pool:
        futures = [pool.submit(contextvars.copy_context().run, guarded, item) for item in items]
        return [future.result() for future in futures]


def normalized_emails(value: Any) -> list[str]:
    """The e-mail addresses of an invitation payload, trimmed, lower-cased, each once, in order."""
    if isinstance(value, str):
        value = [value]
    return list(dict.fromkeys(str(e).strip().lower() for e in value or [] if str(e).strip()))


def invitations_merged(invite: Callable[[Mapping[str, Any]], ActionResult], payloads: list[Mapping[str, Any]]) -> list[ActionResult | Exception]:
    """Many invitation payloads ({channel, emails}) as one call per channel; each payload gets its own result.

    A step that invites each stakeholder as its own item (per-person status in the war room) costs one lookup round and
    one invitation call instead of one of each per person. The call's `data["not_found"]` says who was not invited.
    """
    by_channel: dict[str, list[int]] = {}
    for index, payload in enumerate(payloads):
        by_channel.setdefault(str(payload.get("channel") or ""), []).append(index)
    results: list[ActionResult | Exception] = [Exception("not invited")] * len(payloads)
    for channel, indexes in by_channel.items():
        emails = list(dict.fromkeys(e for i in indexes for e in normalized_emails(payloads[i].get("emails"))))
        try:
            merged = invite({**payloads[indexes[0]], "channel": channel, "emails": emails})
        except Exception as exc:  # noqa: BLE001 - every payload of this channel records the same failure
            for i in indexes:
                results[i] = exc
            continue
        missing = {str(e).lower() for e in (merged.data or {}).get("not_found", [])}
        refusals = {str(e).lower(): str(why) for e, why in ((merged.data or {}).get("refused") or {}).items()}
        members = (merged.data or {}).get("already_members")  # None: the connector cannot tell who was already there
        for i in indexes:
            own = normalized_emails(payloads[i].get("emails"))
            not_found = [e for e in own if e in missing]
            refused = {e: refusals[e] for e in own if e in refusals}
            summary = f"{len(own) - len(not_found) - len(refused)} invited" + (f", {len(not_found)} not found" if not_found else "")
            if refused:
                summary += f", {len(refused)} refused ({', '.join(sorted(set(refused.values())))})"
            results[i] = ActionResult(
                external_id=merged.external_id,
                url=merged.url,
                data={"invited": [e for e in own if e not in missing and e not in refused], "not_found": not_found, "refused": refused, "channel": channel},
                # Added by this call: someone of its own was newly invited (not merely someone else in the chunk).
                created=merged.created and (members is None or any(e not in missing and e not in refused and e not in members for e in own)),
                summary=summary,
            )
    return results
