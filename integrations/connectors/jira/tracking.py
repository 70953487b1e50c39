"""Jira issues the war room tracks: status read back in batches (one JQL search per 100 keys), done-ness, and undo by closing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.jira.actions import JiraActions
from integrations.connectors.jira.client import parse_jira_time
from integrations.errors import ApiBadRequest, ApiNotFound

ISSUE_KINDS = ("task", "jira_issue", "issue", "issues")  # TrackedKind.TASK, and the war room's older task kinds
# Status names that mean the work is over whatever their category (the war room's rule before connectors decided).
DONE_STATUSES = frozenset({"done", "closed", "resolved", "archived", "cancelled", "deleted", "completed"})


def issue_state(status: str, category: str = "", *, owner: str = "", key: str = "", url: str = "", updated: str | None = None) -> TrackedObject:
    """An issue as the war room tracks it: done when its status category is done, or its status name says so."""
    details: dict[str, Any] = {}
    if category:
        details["status_category"] = category
    if updated:
        details["updated"] = updated  # the vendor's own time: a poll older than a webhook already applied changes nothing
    is_done = category == "done" or status.lower() in DONE_STATUSES
    return TrackedObject(owner=owner, status=status, is_done=is_done, url=url, key=key, details=details)


class JiraTracking(JiraActions):
    """fetch_objects and undo for issues created by create_issue."""

    STATUS_FIELDS = ("status", "assignee", "updated")
    STATUS_BATCH = 100  # keys per JQL search: keeps the query short and one page long
    MISSING_KEY = re.compile(r"An issue with key '([^']+)' does not exist")
    CLOSING_NAMES = ("cancelled", "canceled", "won't do", "wont do", "abandoned", "declined", "rejected")

    def _issue_state(self, issue: Mapping[str, Any]) -> TrackedObject:
        """The task shape the webhook path produces (to_bastion), plus the issue's own updated time."""
        shape = self.to_bastion("issues", issue)
        updated = parse_jira_time((issue.get("fields") or {}).get("updated"))
        return issue_state(
            shape["status"],
            shape["status_category"],
            owner=shape["assignee_email"],
            key=shape["key"],
            url=shape["url"],
            updated=updated.isoformat() if updated else None,
        )

    def _read_one(self, ref: str) -> TrackedObject:
        """GET /issue/{key}?fields=status,assignee,updated; an issue Jira no longer has reads as deleted."""
        try:
            return self._issue_state(self._get_issue(ref, ",".join(self.STATUS_FIELDS)))
        except ApiNotFound:
            return TrackedObject(status="deleted", is_done=True, key=ref)

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """Many issues (keys or ids) through one JQL search `key in (...)` per 100, keyed by what was asked for.

        Jira refuses the whole query when one key no longer exists; those keys are read one by one (deleted or moved)
        and the search is sent again without them.
        """
        if kind not in ISSUE_KINDS:
            raise KeyError(f"Jira cannot read '{kind}' objects")
        wanted = list(dict.fromkeys(i for i in external_ids if i))
        found: dict[str, TrackedObject] = {}
        for start in range(0, len(wanted), self.STATUS_BATCH):
            pending = wanted[start : start + self.STATUS_BATCH]
            for _attempt in range(3):
                if not pending:
                    break
                try:
                    issues = self._search_keys(pending)
                except ApiBadRequest as exc:
                    missing = set(self.MISSING_KEY.findall(exc.message)) & set(pending)
                    if not missing:
                        raise
                    for ref in missing:
                        found[ref] = self._read_one(ref)
                    pending = [ref for ref in pending if ref not in missing]
                    continue
                by_ref = {ref: issue for issue in issues for ref in (str(issue.get("id", "")), str(issue.get("key", "")))}
                for ref in pending:
                    # Not returned without an error: moved to another project (new key) or hidden; read it directly.
                    found[ref] = self._issue_state(by_ref[ref]) if ref in by_ref else self._read_one(ref)
                pending = []
            for ref in pending:
                found[ref] = self._read_one(ref)
        return found

    def _search_keys(self, refs: list[str]) -> list[dict[str, Any]]:
        jql = "key in (" + ", ".join(f'"{ref}"' for ref in refs) + ")"
        issues: list[dict[str, Any]] = []
        token = None
        while True:
            body = self.search(jql, fields=list(self.STATUS_FIELDS), page_token=token, max_results=self.STATUS_BATCH)
            issues.extend(body.get("issues", []))
            token = body.get("nextPageToken")
            if not token:
                return issues

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Undo create_issue: comment why (once), then transition to a Cancelled-like status, else Done. Never deletes."""
        if action not in ("create_issue", "create_task"):
            raise KeyError(f"Jira cannot undo '{action}'")
        return self._close_issue(key or external_id, reason, idempotency_key)

    def _close_issue(self, key: str, reason: str, idempotency_key: str) -> ActionResult:
        issue = self._get_issue(key, "status")
        status = (issue.get("fields") or {}).get("status") or {}
        url = self._browse_url(issue["key"], issue.get("self", ""))
        if reason:
            self._add_comment({"issue_key": issue["key"], "body": reason}, f"{idempotency_key}:comment")
        if (status.get("statusCategory") or {}).get("key") == "done":
            data = {"key": issue["key"], "status": status.get("name", ""), "status_category": "done"}
            return ActionResult(str(issue["id"]), url, data, created=False, tracked=issue_state(data["status"], "done", key=issue["key"], url=url))
        transitions = self.client.get(f"{self.api}/issue/{issue['key']}/transitions", params={"expand": "transitions.fields"}).json().get("transitions", [])
        closing = [t for t in transitions if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"]
        if not closing:
            names = sorted({(t.get("to") or {}).get("name", "") for t in transitions})
            raise ApiBadRequest(
                f"{issue['key']} has no transition to a done status from {status.get('name', '')}; available: {', '.join(names) or 'none'}.",
                vendor_code="no_transition",
            )

        def rank(transition: dict[str, Any]) -> int:
            name = ((transition.get("to") or {}).get("name") or transition.get("name") or "").lower()
            return 0 if name in self.CLOSING_NAMES else 1 if name == "done" else 2

        chosen = min(closing, key=rank)
        body: dict[str, Any] = {"transition": {"id": chosen["id"]}}
        screen = chosen.get("fields") or {}
        required = [name for name, field in screen.items() if field.get("required") and not field.get("hasDefaultValue")]
        if "resolution" in required:
            allowed = [v.get("name", "") for v in screen["resolution"].get("allowedValues") or []]
            preferred = [v for v in allowed if v.lower() in self.CLOSING_NAMES] or [v for v in allowed if v.lower() == "done"] or allowed[:1]
            if preferred:
                body["fields"] = {"resolution": {"name": preferred[0]}}
                required.remove("resolution")
        if required:
            raise ApiBadRequest(
                f"Closing {issue['key']} needs fields Bastion cannot fill: {', '.join(sorted(required))}. Close it in Jira.", vendor_code="transition_screen"
            )
        self.client.post(f"{self.api}/issue/{issue['key']}/transitions", json=body)  # 204; a re-run finds the issue done above
        target = chosen.get("to") or {}
        data = {"key": issue["key"], "status": target.get("name") or chosen.get("name", ""), "status_category": "done"}
        return ActionResult(str(issue["id"]), url, data, created=True, tracked=issue_state(data["status"], "done", key=issue["key"], url=url))
