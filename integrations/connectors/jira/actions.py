"""Jira actions: issues created once (marker label, bulk ≤50 per call), assigned, transitioned and commented once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.jira.client import idempotency_label
from integrations.connectors.jira.manifest import BULK_LIMIT, COMMENT_PROPERTY
from integrations.connectors.jira.reader import JiraReader
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiError, ApiHostError, ApiRateLimited


class JiraActions(JiraReader):
    """perform and perform_bulk."""

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """Run an action. known_new: the caller guarantees no earlier request used this idempotency key, so create_issue
        skips its marker search (create_once still searches after an ambiguous failure)."""
        if action == "create_task":
            action, payload = "create_issue", self.task_as_issue(payload)
        if known_new and action == "create_issue":
            return self._create_issue(payload, idempotency_key, known_new=True)
        handlers = {
            "create_issue": self._create_issue,
            "assign_issue": self._assign_issue,
            "transition_issue": self._transition_issue,
            "add_comment": self._add_comment,
        }
        if action not in handlers:
            raise KeyError(f"Jira has no action '{action}'")
        return handlers[action](payload, idempotency_key)

    def task_as_issue(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The tasks role's payload (title, notes, assignee e-mail, due date) as create_issue's; the project defaults to the first synced one."""
        project_key = str(payload.get("project_key") or next(iter(self._project_keys()), "")).strip()
        if not project_key:
            raise ApiBadRequest(
                "Jira: a task needs a project key (the step's project_key, else the first of the connection's project keys).", vendor_code="invalid_payload"
            )
        issue = {
            "project_key": project_key,
            "summary": payload.get("title") or "",
            "description": payload.get("notes") or "",
            "issue_type": payload.get("issue_type") or "Task",
            "assignee_email": payload.get("assignee") or "",
            "due_date": payload.get("due_on") or "",
            "labels": list(payload.get("labels") or []),
        }
        return {name: value for name, value in issue.items() if value not in ("", None) or name in ("summary", "description")}

    def _issue_payload(self, payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        data = dict(payload)
        if payload.get("assignee_email"):
            data["assignee_account_id"] = self._require_account_id(str(payload["assignee_email"]))
        data["labels"] = [*(payload.get("labels") or []), idempotency_label(idempotency_key)]
        return self.from_bastion("issues", data)

    def _issue_result(self, issue: Mapping[str, Any], created: bool, payload: Mapping[str, Any] | None = None) -> ActionResult:
        """An issue as an action's result; with the create payload, also the task the war room tracks (its summary and assignee)."""
        url = self._browse_url(issue["key"], issue.get("self", ""))
        tracked = None
        if payload is not None:
            tracked = TrackedObject(title=str(payload.get("summary") or ""), owner=str(payload.get("assignee_email") or ""), url=url, key=issue["key"])
        return ActionResult(external_id=str(issue["id"]), url=url, data={"key": issue["key"]}, created=created, tracked=tracked, link_text=issue["key"])

    def _find_by_labels(self, labels: list[str]) -> dict[str, dict[str, Any]]:
        """Issues carrying any of these marker labels, by label."""
        if not labels:
            return {}
        jql = "labels in (" + ", ".join(f'"{label}"' for label in labels) + ")"
        found: dict[str, dict[str, Any]] = {}
        token = None
        wanted = set(labels)
        while True:
            body = self.search(jql, fields=["labels", "summary"], page_token=token, max_results=100)
            for issue in body.get("issues", []):
                for label in set(issue["fields"].get("labels", [])) & wanted:
                    found.setdefault(label, issue)
            token = body.get("nextPageToken")
            if not token:
                return found

    def _create_issue(self, payload: Mapping[str, Any], idempotency_key: str, *, known_new: bool = False) -> ActionResult:
        label = idempotency_label(idempotency_key)
        existing = None if known_new else self._find_by_labels([label]).get(label)
        if existing:
            return self._issue_result(existing, created=False, payload=payload)
        body = self._issue_payload(payload, idempotency_key)

        def send() -> ActionResult:
            return self._issue_result(self.client.post(f"{self.api}/issue", json=body, retry=False).json(), created=True, payload=payload)

        def find() -> ActionResult | None:
            issue = self._find_by_labels([label]).get(label)
            return self._issue_result(issue, created=True, payload=payload) if issue else None

        return create_once(self.client, send, find, what="jira issue")

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """create_issue through POST /issue/bulk, ≤50 per call, one marker search per chunk first (skipped when the caller
        guarantees none of the keys was ever tried: known_new)."""
        if action == "create_task":
            action, payloads = "create_issue", [self.task_as_issue(p) for p in payloads]
        if action != "create_issue":
            return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys)
        if len(payloads) != len(idempotency_keys):
            raise ValueError("Every payload needs its idempotency key.")
        results: list[ActionResult | Exception] = []
        for start in range(0, len(payloads), BULK_LIMIT):
            results.extend(self._bulk_chunk(payloads[start : start + BULK_LIMIT], idempotency_keys[start : start + BULK_LIMIT], known_new=known_new))
        return results

    def _bulk_chunk(self, payloads: list[Mapping[str, Any]], keys: list[str], *, known_new: bool = False) -> list[ActionResult | Exception]:
        labels = [idempotency_label(k) for k in keys]
        results: list[ActionResult | Exception | None] = [None] * len(payloads)
        existing = {} if known_new else self._find_by_labels(labels)
        pending: list[int] = []
        bodies: dict[int, dict[str, Any]] = {}
        for index, label in enumerate(labels):
            if label in existing:
                results[index] = self._issue_result(existing[label], created=False, payload=payloads[index])
                continue
            try:
                bodies[index] = self._issue_payload(payloads[index], keys[index])
                pending.append(index)
            except ApiError as exc:  # e.g. an assignee email nobody has: only this item fails
                results[index] = exc
        for attempt in range(1, 4):
            if not pending:
                break
            try:
                response = self.client.post(f"{self.api}/issue/bulk", json={"issueUpdates": [bodies[i] for i in pending]}, retry=False).json()
            except ApiBadRequest:
                # Every element failed (HTTP 400); create them one by one to get each item's own error.
                for index in pending:
                    try:
                        # A 400 means nothing of the batch was created, so a never-tried key is still new.
                        results[index] = self._create_issue(payloads[index], keys[index], known_new=known_new)
                    except ApiError as exc:
                        results[index] = exc
                pending = []
                break
            except (ApiHostError, ApiRateLimited) as exc:
                # Outcome unknown (or throttled): find what landed by marker, resend only the rest.
                found = self._find_by_labels([labels[i] for i in pending])
                for index in pending:
                    if labels[index] in found:
                        results[index] = self._issue_result(found[labels[index]], created=True, payload=payloads[index])
                pending = [i for i in pending if results[i] is None]
                if attempt == 3:
                    for index in pending:
                        results[index] = exc
                    pending = []
                continue
            failed = {int(e.get("failedElementNumber", -1)): e for e in response.get("errors", [])}
            created = iter(response.get("issues", []))
            for position, index in enumerate(pending):
                if position in failed:
                    element = failed[position].get("elementErrors") or {}
                    message = "; ".join([*element.get("errorMessages", []), *(f"{k}: {v}" for k, v in (element.get("errors") or {}).items())])
                    results[index] = ApiBadRequest(f"Jira refused issue {position + 1} of the batch: {message}", status=failed[position].get("status"))
                else:
                    results[index] = self._issue_result(next(created), created=True, payload=payloads[index])
            pending = []
        return [r if r is not None else ApiError("Issue was not created.") for r in results]

    def _get_issue(self, key: str, fields: str) -> dict[str, Any]:
        return self.client.get(f"{self.api}/issue/{key}", params={"fields": fields}).json()

    def _assign_issue(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        account_id = self._require_account_id(str(payload["assignee_email"]))
        issue = self._get_issue(key, "assignee")
        if self._user_id((issue.get("fields") or {}).get("assignee")) == account_id:
            return self._issue_result(issue, created=False)
        self.client.put(f"{self.api}/issue/{key}/assignee", json=self._user_ref(account_id))
        return self._issue_result(issue, created=True)

    def _transition_issue(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        wanted = str(payload["status"]).strip().lower()
        issue = self._get_issue(key, "status")
        current = ((issue.get("fields") or {}).get("status") or {}).get("name", "")
        if current.lower() == wanted:
            return ActionResult(
                str(issue["id"]), self._browse_url(issue["key"], issue.get("self", "")), {"key": issue["key"], "status": current}, created=False
            )
        transitions = self.client.get(f"{self.api}/issue/{key}/transitions").json().get("transitions", [])
        match = next((t for t in transitions if (t.get("to") or {}).get("name", "").lower() == wanted), None) or next(
            (t for t in transitions if t.get("name", "").lower() == wanted), None
        )
        if match is None:
            names = sorted({(t.get("to") or {}).get("name", "") for t in transitions})
            raise ApiBadRequest(
                f"{key} cannot move from {current} to {payload['status']}; available: {', '.join(names) or 'none'}.", vendor_code="no_transition"
            )
        self.client.post(f"{self.api}/issue/{key}/transitions", json={"transition": {"id": match["id"]}})  # 204; a repeat is caught above
        status = (match.get("to") or {}).get("name") or match.get("name")
        return ActionResult(str(issue["id"]), self._browse_url(issue["key"], issue.get("self", "")), {"key": issue["key"], "status": status}, created=True)

    def _add_comment(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        # The comment property's value keeps its own format (32 hex digits, no prefix): comments posted before find it.
        marker = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]

        def find() -> ActionResult | None:
            body = self.client.get(f"{self.api}/issue/{key}/comment", params={"expand": "properties", "maxResults": 100, "orderBy": "-created"}).json()
            for comment in body.get("comments", []):
                for prop in comment.get("properties") or []:
                    if prop.get("key") == COMMENT_PROPERTY and (prop.get("value") or {}).get("idempotency") == marker:
                        return ActionResult(str(comment["id"]), self._browse_url(key), {"issue_key": key}, created=False)
            return None

        existing = find()
        if existing:
            return existing
        body = {"body": self._rich_text(str(payload["body"])), "properties": [{"key": COMMENT_PROPERTY, "value": {"idempotency": marker}}]}

        def send() -> ActionResult:
            comment = self.client.post(f"{self.api}/issue/{key}/comment", json=body, retry=False).json()
            return ActionResult(str(comment["id"]), self._browse_url(key), {"issue_key": key}, created=True)

        return create_once(self.client, send, find, what="jira comment")
