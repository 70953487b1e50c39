"""Microsoft Graph's HTTP side: the error envelope with the permission a 403 lacks, nextLink paging on the Graph host, $batch."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.connectors.base import BaseConnector
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiRateLimited, ApiUnauthorized
from integrations.http import classify_status, generic_error_message, rate_limit_wait, response_json

logger = logging.getLogger(__name__)

VENDOR = "Microsoft 365"
BATCH_LIMIT = 20  # Graph's JSON batching accepts at most 20 requests per call
BATCH_ATTEMPTS = 3  # rounds of resending the items Graph throttled inside a batch
ID = r"[^/]+"
USER_SELECT = "id,displayName,mail,userPrincipalName"
USERS_TTL_SECONDS = 600  # directory users found by address stay known this long to one connector (ids never change)
SAFE = "@.'"  # kept as is in a $filter inside a $batch URL
# Delegated permissions a user may accept without an administrator (requiresAdminConsent false in Microsoft's permission map).
USER_CONSENTABLE = frozenset(
    {
        "User.Read",
        "User.ReadBasic.All",
        "Team.ReadBasic.All",
        "Channel.ReadBasic.All",
        "ChannelMessage.Send",
        "OnlineMeetings.ReadWrite",
        "Calendars.Read",
        "Calendars.ReadWrite",
        "Calendars.Read.Shared",
        "Files.Read",
        "Files.ReadWrite",
        "Files.Read.All",
        "Files.ReadWrite.All",
        "Sites.Read.All",
    }
)


@dataclass(frozen=True)
class PermissionRoute:
    """Which Graph permission a call needs, per permission model (empty: that model cannot make the call)."""

    method: str
    pattern: re.Pattern[str]
    delegated: tuple[str, ...]
    application: tuple[str, ...]
    note: str = ""


def _route(method: str, pattern: str, delegated: tuple[str, ...], application: tuple[str, ...], note: str = "") -> PermissionRoute:
    return PermissionRoute(method, re.compile(f"^{pattern}$", re.IGNORECASE), delegated, application, note)


USER = rf"(?:me|users/{ID})"
# Least-privileged permissions per call (msgraph permissions map, `least=`); the first match wins.
PERMISSION_ROUTES: list[PermissionRoute] = [
    _route(
        "POST",
        rf"teams/{ID}/channels/{ID}/messages(?:/{ID}/replies)?",
        ("ChannelMessage.Send",),
        (),
        "application permissions can only import messages (Teamwork.Migrate.All), not post them",
    ),
    _route("GET", rf"teams/{ID}/channels/{ID}/messages", ("ChannelMessage.Read.All",), ("ChannelMessage.Read.All",)),
    _route("POST", rf"teams/{ID}/channels/{ID}/members", ("ChannelMember.ReadWrite.All",), ("ChannelMember.ReadWrite.All",)),
    _route("GET", rf"teams/{ID}/channels/{ID}/members", ("ChannelMember.Read.All",), ("ChannelMember.Read.All",)),
    _route("DELETE", rf"teams/{ID}/channels/{ID}", ("Channel.Delete.All",), ("Channel.Delete.All",)),
    _route("POST", rf"teams/{ID}/channels", ("Channel.Create",), ("Channel.Create",)),
    _route("GET", rf"teams/{ID}/channels(?:/{ID})?", ("Channel.ReadBasic.All",), ("Channel.ReadBasic.All",)),
    _route("POST", rf"teams/{ID}/members", ("TeamMember.ReadWriteNonOwnerRole.All",), ("TeamMember.ReadWriteNonOwnerRole.All",)),
    _route("GET", rf"teams/{ID}/members", ("TeamMember.Read.All",), ("TeamMember.Read.All",)),
    _route("GET", r"(?:me/joinedTeams|teams(?:/[^/]+)?)", ("Team.ReadBasic.All",), ("Team.ReadBasic.All",)),
    _route(
        "POST",
        rf"{USER}/onlineMeetings(?:/createOrGet)?",
        ("OnlineMeetings.ReadWrite",),
        ("OnlineMeetings.ReadWrite.All",),
        "application use also needs an application access policy granted to the organizer (Teams PowerShell)",
    ),
    _route("POST", rf"{USER}/(?:calendar/)?getSchedule", ("Calendars.ReadBasic",), ("Calendars.ReadBasic",)),
    _route("POST", rf"{USER}/findMeetingTimes", ("Calendars.Read.Shared",), (), "findMeetingTimes has no application permission"),
    _route("GET", rf"{USER}/(?:calendars/{ID}/)?(?:events|calendarView)(?:/{ID})?", ("Calendars.ReadBasic",), ("Calendars.ReadBasic",)),
    _route("(?:POST|PATCH|DELETE)", rf"{USER}/(?:calendars/{ID}/)?events(?:/{ID}(?:/cancel)?)?", ("Calendars.ReadWrite",), ("Calendars.ReadWrite",)),
    _route("GET", r"places/.*", ("Place.Read.All",), ("Place.Read.All",)),
    _route("GET", r"me", ("User.Read",), ()),
    _route("GET", rf"users(?:/{ID})?", ("User.ReadBasic.All",), ("User.ReadBasic.All",)),
    _route("GET", r"organization", ("User.Read",), ("Organization.Read.All",)),
]


def odata_eq(attribute: str, value: str) -> str:
    """An OData equality filter with the value quoted (a quote inside doubles, as OData escapes it)."""
    return f"{attribute} eq '{value.replace(chr(39), chr(39) * 2)}'"


def register_permission_routes(routes: list[PermissionRoute]) -> None:
    """Other parts of the package (files, subscriptions) add the permissions of the calls they make."""
    PERMISSION_ROUTES.extend(route for route in routes if route not in PERMISSION_ROUTES)


def graph_relative(path: str) -> str:
    """A Graph path without host, /v1.0 prefix or query: 'teams/{id}/channels'."""
    bare = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    bare = bare.strip("/")
    marker = bare.find("v1.0/")
    return bare[marker + len("v1.0/") :] if marker >= 0 else bare


def required_permissions(method: str, path: str) -> PermissionRoute | None:
    """The permission route for a Graph call, if Bastion knows it."""
    relative = graph_relative(path)
    for route in PERMISSION_ROUTES:
        if re.fullmatch(route.method, method.upper()) and route.pattern.match(relative):
            return route
    return None


def permission_hint(method: str, path: str) -> str:
    """'It needs Channel.Create (delegated, administrator consent) or Channel.Create (application); an administrator must grant it …'."""
    route = required_permissions(method, path)
    if route is None:
        return "An administrator must grant Bastion's app the Graph permission this call needs (Entra ID → API permissions)."
    needs, admin = [], False
    if route.delegated:
        admin = any(p not in USER_CONSENTABLE for p in route.delegated)
        needs.append(" or ".join(route.delegated) + (" (delegated, administrator consent)" if admin else " (delegated: reconnect and accept it)"))
    if route.application:
        needs.append(" or ".join(route.application) + " (application)")
    note = f" ({route.note})" if route.note else ""
    who = "an administrator must grant it" if route.application or admin else "the signed-in user can accept it"
    return f"It needs {' or '.join(needs)}{note}; {who} to Bastion's app in Entra ID (API permissions → Grant admin consent)."


def classify_graph_response(response: requests.Response, path: str) -> ApiError | None:
    """The error tree from Graph's {"error": {code, message}}: 429/503 with Retry-After throttle, a 403 names the missing permission."""
    status = response.status_code
    if 200 <= status < 400:
        return None
    message, code = generic_error_message(response_json(response))
    if status in (429, 503) and (status == 429 or response.headers.get("Retry-After")):
        wait = rate_limit_wait(response.headers)
        return ApiRateLimited(
            f"{VENDOR} is throttling Bastion: {message or 'too many requests'}", retry_after=wait or 1.0, status=status, vendor_code=code, path=path
        )
    if status == 401 and "application-only context" in message:
        # Graph refuses an application's live channel post with a 401, though no token would be better: it needs a delegate.
        hint = permission_hint("POST", path)
        return ApiForbidden(f"{VENDOR}: {message} {hint}", status=status, vendor_code=code or "needs_delegate", path=path)
    if status == 401:
        text = (message or "the access token was refused").rstrip(".")
        return ApiUnauthorized(
            f"{VENDOR} refused the token ({code or 'InvalidAuthenticationToken'}): {text}. Reconnect Microsoft 365.", status=status, vendor_code=code, path=path
        )
    if status == 403:
        method = response.request.method if response.request is not None and response.request.method else "GET"
        hint = permission_hint(method, path)
        return ApiForbidden(
            f"{VENDOR} refused {method} {graph_relative(path)}: {(message or 'access denied').rstrip('.')}. {hint}", status=status, vendor_code=code, path=path
        )
    return classify_status(response, path, message=f"{VENDOR}: {message}" if message else "", code=code)


@dataclass
class BatchResult:
    """One $batch item's answer: its status, headers and body, and the error it maps to (None for a success)."""

    id: str
    status: int
    body: Any
    headers: dict[str, str]
    error: ApiError | None


def _item_response(item: Mapping[str, Any], method: str) -> requests.Response:
    """A requests.Response built from one $batch answer, so the item goes through the same classifier as a call."""
    response = requests.Response()
    response.status_code = int(item.get("status") or 500)
    response.headers.update({str(k): str(v) for k, v in (item.get("headers") or {}).items()})
    body = item.get("body")
    if body is not None and not isinstance(body, str | bytes):
        response.headers.setdefault("Content-Type", "application/json")
        response._content = json.dumps(body).encode()
    else:
        response._content = body.encode() if isinstance(body, str) else (body or b"")
    response.request = requests.Request(method, "https://graph.invalid/").prepare()
    return response


class GraphBase(BaseConnector):
    """Graph v1.0 calls every part of the Microsoft 365 connector makes: relative paths, paging, batching, the signed-in user."""

    _me_id = ""  # the delegate's id, asked once per connector

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_graph_response(response, path)

    def _path(self, path: str) -> str:
        """Relative Graph paths work whether the base URL ends in /v1.0 (Graph) or not (a stand-in's root)."""
        if path.startswith("http"):
            return path
        path = path.lstrip("/")
        return path if self.client.base_url.rstrip("/").endswith("/v1.0") else f"v1.0/{path}"

    def graph_root(self) -> str:
        """The Graph host root (no /v1.0): the stand-in serves its login pages beside it."""
        base = self.client.base_url.rstrip("/")
        return base[: -len("/v1.0")] if base.endswith("/v1.0") else base

    @property
    def is_application(self) -> bool:
        """Client credentials (application permissions) rather than a signed-in delegate."""
        return bool(self.credentials.get("client_secret"))

    def user_path(self, user: str = "") -> str:
        """users/{organizer} when one is configured (the application has no 'me'), else the signed-in delegate's users/{id}."""
        who = user or str(self.config.get("organizer") or "").strip()
        if not who and self.is_application:
            raise ApiBadRequest("With application permissions Bastion acts for a named user: set 'Organizer (user or mailbox)' in the settings.")
        return f"users/{quote(who or self.signed_in_user_id(), safe='@.')}"

    def signed_in_user_id(self) -> str:
        """The delegate's directory id (the published descriptions address users by id, not /me): asked once per connector."""
        if not self._me_id:
            self._me_id = str(self.graph("GET", "me", params={"$select": "id,mail,userPrincipalName,displayName"}).get("id") or "")
            if not self._me_id:
                raise ApiBadRequest(f"{VENDOR} did not say who signed in.")
        return self._me_id

    def graph(self, method: str, path: str, **kwargs: Any) -> Any:
        """One Graph call; the decoded body ({} for 202/204)."""
        response = self.client.request(method, self._path(path), **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None, *, max_pages: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Each page's `value`, following @odata.nextLink verbatim but only on the configured Graph host."""
        url: str | None = self._path(path)
        query: Mapping[str, Any] | None = params
        pages = 0
        while url:
            body = self.client.get(url, params=query).json()
            pages += 1
            yield list(body.get("value") or [])
            next_link = body.get("@odata.nextLink")
            if not next_link or (max_pages and pages >= max_pages):
                return
            url, query = self.next_link(next_link), None

    def next_link(self, link: str) -> str:
        """A next-page (or delta) link, refused unless it stays on the configured Graph host and scheme."""
        allowed, target = urlsplit(self.client.base_url), urlsplit(link)
        if target.scheme != allowed.scheme or target.netloc != allowed.netloc:
            raise ApiBadRequest(f"{VENDOR} answered a next page on another host ({target.netloc}); Bastion only follows links on {allowed.netloc}.")
        return link

    def iter_items(self, path: str, params: Mapping[str, Any] | None = None, *, max_pages: int | None = None) -> Iterator[dict[str, Any]]:
        for page in self.iter_pages(path, params, max_pages=max_pages):
            yield from page

    def batch(self, calls: list[Mapping[str, Any]]) -> list[BatchResult]:
        """JSON $batch in chunks of 20: each call {method, url (relative), body?, headers?, id?}; results in the calls' order.

        Items Graph throttled inside a batch (429) are resent after their Retry-After, within the client's inline wait.
        """
        prepared = []
        for index, call in enumerate(calls):
            item: dict[str, Any] = {
                "id": str(call.get("id") or index + 1),
                "method": str(call.get("method") or "GET").upper(),
                "url": "/" + graph_relative(str(call["url"])),
            }
            if "?" in str(call["url"]):
                item["url"] += "?" + str(call["url"]).split("?", 1)[1]
            if call.get("body") is not None:
                item["body"] = call["body"]
                item["headers"] = {"Content-Type": "application/json", **dict(call.get("headers") or {})}
            elif call.get("headers"):
                item["headers"] = dict(call["headers"])
            prepared.append(item)
        if len({item["id"] for item in prepared}) != len(prepared):
            raise ApiBadRequest("Each $batch request needs a distinct id.")
        results: dict[str, BatchResult] = {}
        pending = prepared
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            throttled: list[dict[str, Any]] = []
            wait = 0.0
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                answer = self.client.post(self._path("$batch"), json={"requests": chunk}).json()
                by_id = {item["id"]: item for item in chunk}
                for raw in answer.get("responses") or []:
                    sent = by_id.get(str(raw.get("id")))
                    if sent is None:
                        continue
                    error = classify_graph_response(_item_response(raw, sent["method"]), sent["url"])
                    result = BatchResult(str(raw.get("id")), int(raw.get("status") or 500), raw.get("body"), dict(raw.get("headers") or {}), error)
                    results[result.id] = result
                    if isinstance(error, ApiRateLimited) and attempt < BATCH_ATTEMPTS:
                        throttled.append(sent)
                        wait = max(wait, error.retry_after)
                missing = [item for item in chunk if item["id"] not in results]
                for item in missing:
                    results[item["id"]] = BatchResult(item["id"], 0, None, {}, ApiBadRequest(f"{VENDOR} answered no response for batch item {item['id']}."))
            if not throttled or wait > self.client.max_inline_wait:
                break
            logger.info("microsoft365.batch_throttled", extra={"items": len(throttled), "wait": wait, "attempt": attempt})
            self.client.sleep(wait)
            pending = throttled
        return [results[item["id"]] for item in prepared]

    # Directory look-ups shared by Teams and the calendar
    def find_user(self, email: str) -> dict[str, Any] | None:
        """A directory user by mail or user principal name; None when nobody has it."""
        results = self.find_users([email])
        return results.get(email.strip().lower())

    def find_users(self, emails: list[str]) -> dict[str, dict[str, Any] | None]:
        """Directory users by mail (then user principal name), 20 look-ups per $batch call; None for an unknown address."""
        addresses = list(dict.fromkeys(e.strip().lower() for e in emails if e and e.strip()))
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(addresses)
        # Per instance (never a class attribute: one connector per integration, so one tenant per cache).
        cache: dict[str, tuple[float, dict[str, Any]]] = self.__dict__.setdefault("_users_cache", {})
        now = time.monotonic()
        for address in addresses:
            if (hit := cache.get(address)) and hit[0] > now:
                found[address] = hit[1]
        for attribute in ("mail", "userPrincipalName"):
            missing = [a for a in addresses if found[a] is None]
            if not missing:
                break
            calls = [
                {"id": str(i + 1), "method": "GET", "url": f"users?$filter={quote(odata_eq(attribute, a), safe=SAFE)}&$select={USER_SELECT}"}
                for i, a in enumerate(missing)
            ]
            for address, result in zip(missing, self.batch(calls), strict=True):
                if result.error is not None:
                    raise result.error
                values = (result.body or {}).get("value") or []
                found[address] = values[0] if values else None
                if values:  # an unknown address is asked again next time: the person may have joined since
                    cache[address] = (now + USERS_TTL_SECONDS, values[0])
        return found
