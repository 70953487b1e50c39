"""Reading Jira: projects, issues (incremental by `updated`), users, fields and create metadata, and Bastion's shapes of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import FieldInfo, Page
from integrations.connectors.entities import BastionPerson, BastionTask
from integrations.connectors.jira.client import JiraClient, parse_jira_time
from integrations.connectors.jira.manifest import FIELD_TYPES, FULL_SCAN_RESTRICTION, ISSUE_FIELDS
from integrations.connectors.kit.fields import value_type
from integrations.errors import ApiNotFound


class JiraReader(JiraClient):
    """read/discover/to_bastion/from_bastion over REST (v3 on Cloud; Data Center overrides the v2 differences)."""

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        readers = {
            "projects": self._read_projects,
            "issues": self._read_issues,
            "users": self._read_users,
            "fields": self._read_fields,
            "create_metadata": self._read_create_metadata,
        }
        if entity not in readers:
            raise KeyError(f"Jira has no entity '{entity}'")
        return readers[entity](cursor, page)

    def _read_projects(self, cursor: Any, page: Any) -> Page:
        start = int(page or 0)
        params: dict[str, Any] = {"startAt": start, "maxResults": self._page_size(), "expand": "description,lead", "orderBy": "key"}
        if self._project_keys():
            params["keys"] = self._project_keys()
        body = self.client.get(f"{self.api}/project/search", params=params).json()
        records = body.get("values", [])
        for project in records:
            # Projects have no due date of their own: the next unreleased version's release date stands in.
            project["versions"] = self.client.get(f"{self.api}/project/{project['key']}/versions").json()
        last = body.get("isLast", True) or not records
        return Page(records=records, next_page=None if last else start + len(records))

    def _issue_jql(self, cursor: Any) -> str:
        restrictions = []
        if self._project_keys():
            restrictions.append("project in (" + ", ".join(f'"{k}"' for k in self._project_keys()) + ")")
        if self.config.get("jql"):
            restrictions.append(f"({self.config['jql']})")
        since = parse_jira_time((cursor or {}).get("updated")) if isinstance(cursor, Mapping) else None
        if since is not None:
            # Minute precision and >=: the boundary minute is read again, which upserts make harmless.
            restrictions.append(f'updated >= "{since.astimezone(self._timezone()).strftime("%Y-%m-%d %H:%M")}"')
        if not restrictions:
            restrictions.append(FULL_SCAN_RESTRICTION)
        return " AND ".join(restrictions) + " ORDER BY updated ASC"

    def _read_issues(self, cursor: Any, page: Any) -> Page:
        jql = page["jql"] if page else self._issue_jql(cursor)
        body = self.search(jql, fields=ISSUE_FIELDS, page_token=page["token"] if page else None)
        records = body.get("issues", [])
        next_token = body.get("nextPageToken")
        newest = max(
            (r["fields"].get("updated") for r in records if r.get("fields", {}).get("updated")),
            key=lambda v: parse_jira_time(v) or datetime.min.replace(tzinfo=UTC),
            default=None,
        )
        previous = (cursor or {}).get("updated") if isinstance(cursor, Mapping) else None
        if (
            previous
            and newest
            and (parse_jira_time(previous) or datetime.min.replace(tzinfo=UTC)) >= (parse_jira_time(newest) or datetime.min.replace(tzinfo=UTC))
        ):
            newest = None
        return Page(
            records=records,
            next_page={"jql": jql, "token": next_token} if next_token else None,
            cursor={"updated": newest} if newest else None,
            is_full_scan=cursor is None and not self.config.get("jql"),
        )

    def _read_users(self, cursor: Any, page: Any) -> Page:
        start = int(page or 0)
        size = self._page_size()
        users = self.client.get(f"{self.api}/users/search", params={"startAt": start, "maxResults": size}).json()
        people = [u for u in users if u.get("accountType") == "atlassian"]  # app and customer accounts are not people
        return Page(records=people, next_page=start + len(users) if len(users) == size else None)

    def _read_fields(self, cursor: Any, page: Any) -> Page:
        return Page(records=self.client.get(f"{self.api}/field").json())

    def _paged_values(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every value of a startAt/maxResults/total list."""
        pages = self.client.paginate_offset(
            path,
            items_key=key,
            limit=self._page_size(),
            offset_param="startAt",
            limit_param="maxResults",
            more=lambda body, offset: offset < int(body.get("total", 0)),
        )
        return [value for values, _response in pages for value in values]

    def create_metadata(self, project_key: str) -> list[dict[str, Any]]:
        """Issue types of a project with their create fields (required flags, allowed values, custom fields)."""
        records = []
        for issue_type in self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes", "issueTypes"):
            fields = self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes/{issue_type['id']}", "fields")
            records.append({"id": f"{project_key}:{issue_type['id']}", "project_key": project_key, "issue_type": issue_type, "fields": fields})
        return records

    def _read_create_metadata(self, cursor: Any, page: Any) -> Page:
        keys = self._project_keys() or [p["key"] for p in self._all_projects()]
        index = int(page or 0)
        if index >= len(keys):
            return Page(records=[])
        return Page(records=self.create_metadata(keys[index]), next_page=index + 1 if index + 1 < len(keys) else None)

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        """The wizard's project picker: every project this account can see, read from Jira (a typed key is never guessed)."""
        if name == "project_keys":
            return [(str(p["key"]), f"{p.get('name') or p['key']} ({p['key']})") for p in self._all_projects() if p.get("key")]
        return []

    def _all_projects(self) -> list[dict[str, Any]]:
        projects: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self.client.get(f"{self.api}/project/search", params={"startAt": start, "maxResults": self._page_size(), "orderBy": "key"}).json()
            projects.extend(body.get("values", []))
            start += len(body.get("values", []))
            if body.get("isLast", True) or not body.get("values"):
                return projects

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        if entity == "users":
            return str(record["accountId"])
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        if entity == "issues":
            parsed = parse_jira_time((record.get("fields") or {}).get("updated"))
            return parsed.isoformat() if parsed else None
        return None

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "issues":
            return [
                FieldInfo(
                    name=field["id"],
                    label=field.get("name", field["id"]),
                    type=FIELD_TYPES.get((field.get("schema") or {}).get("type", ""), "object" if field.get("schema") else "string"),
                    path=f"$.fields.{field['id']}",
                    is_custom=bool(field.get("custom")),
                )
                for field in self.client.get(f"{self.api}/field").json()
            ]
        records = self.read(entity).records[:20]
        seen: dict[str, FieldInfo] = {}
        for record in records:
            for key, value in record.items():
                seen.setdefault(key, FieldInfo(key, key, "email" if key == "emailAddress" else value_type(value), f"$.{key}"))
        return sorted(seen.values(), key=lambda f: f.name)

    def create_fields(self, project_key: str, issue_type: str = "Task") -> list[FieldInfo]:
        """The fields a create form needs for one project and issue type, required ones flagged."""
        for meta in self.create_metadata(project_key):
            if meta["issue_type"]["name"].lower() == issue_type.lower() or meta["issue_type"]["id"] == issue_type:
                return [
                    FieldInfo(
                        name=f["fieldId"],
                        label=f["name"],
                        type=FIELD_TYPES.get(f["schema"].get("type", ""), "object"),
                        path=f"$.fields.{f['fieldId']}",
                        is_required=bool(f.get("required")),
                        is_custom=f["fieldId"].startswith("customfield_"),
                    )
                    for f in meta["fields"]
                ]
        raise ApiNotFound(f"Project {project_key} has no issue type {issue_type}.")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "projects":
            upcoming = sorted(
                v["releaseDate"] for v in record.get("versions") or [] if v.get("releaseDate") and not v.get("released") and not v.get("archived")
            )
            status = "deleted" if record.get("deleted") else "archived" if record.get("archived") else "active"
            return {
                "external_id": str(record["id"]),
                "key": record.get("key", ""),
                "title": record.get("name", ""),
                "description": record.get("description") or "",
                "status": status,
                "lead_email": ((record.get("lead") or {}).get("emailAddress") or "").lower(),
                "due_date": upcoming[0] if upcoming else "",
            }
        if entity == "issues":
            fields = record.get("fields") or {}
            status = fields.get("status") or {}
            task = BastionTask(
                external_id=str(record["id"]),
                key=record.get("key", ""),
                status=status.get("name", ""),
                status_category=(status.get("statusCategory") or {}).get("key", ""),
                assignee_email=((fields.get("assignee") or {}).get("emailAddress") or "").lower(),
                due_date=fields.get("duedate") or "",
                url=self._browse_url(record.get("key", ""), record.get("self", "")),
            )
            return {**task, "summary": fields.get("summary") or ""}  # BastionTask names it title; synced records keep summary
        if entity == "users":
            name = record.get("displayName") or ""
            given, _, family = name.partition(" ")
            person = BastionPerson(
                external_id=record["accountId"],
                email=(record.get("emailAddress") or "").lower(),
                name=name,
                given_name=given,
                family_name=family,
                title="",
                department="",
                phone="",
                manager_external_id="",
                groups=[g.get("name", "") for g in (record.get("groups") or {}).get("items", [])],
                is_active=bool(record.get("active", True)),
                username="",
            )
            return dict(person)
        return dict(record)

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion task → IssueUpdateDetails (`assignee_account_id` already resolved from the email)."""
        if entity != "issues":
            raise KeyError(f"Jira cannot write entity '{entity}'")
        fields: dict[str, Any] = {
            "project": {"key": str(data["project_key"]).upper()},
            "summary": str(data["summary"]).strip()[:255],
            "issuetype": {"name": data.get("issue_type") or "Task"},
        }
        if data.get("description"):
            fields["description"] = self._rich_text(str(data["description"]))
        if data.get("assignee_account_id"):
            fields["assignee"] = self._user_ref(str(data["assignee_account_id"]))
        if data.get("due_date"):
            fields["duedate"] = str(data["due_date"])[:10]
        labels = [re.sub(r"\s+", "-", str(label)) for label in data.get("labels") or []]
        if labels:
            fields["labels"] = labels
        fields.update(dict(data.get("fields") or {}))  # custom fields, already in Jira's shape
        return {"fields": fields}
