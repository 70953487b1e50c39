"""Table-style vendors in the declared engine (ServiceNow's Table API): who is calling (basic users, a password or a
client secret registered as a token, bearer tokens from a form-encoded client-credentials endpoint), records answered as
strings with {link, value} references, encoded-query filters and offset paging answered in Link headers."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, jsonify, request

from sandbox.declared import encoded_query
from sandbox.declared.description import Collection
from sandbox.oauth import bearer_token, issue_static_token, token_info

if TYPE_CHECKING:
    from sandbox.declared.engine import DeclaredVendor


class Tables:
    def __init__(self, vendor: DeclaredVendor):
        self.v = vendor
        self.d = vendor.d

    @property
    def enabled(self) -> bool:
        return self.d.references.get("style") == "link_value"

    # ---- who is calling
    def install(self, api: Blueprint) -> None:
        """The vendor's client-credentials token endpoint (`auth.client_credentials.path`), when described."""
        path = (self.d.auth.get("client_credentials") or {}).get("path")
        if path:
            api.add_url_rule(path, endpoint="client_credentials_token", view_func=self.client_credentials_token, methods=["POST"])

    def authenticate(self) -> Response | None:
        """Before each request: the caller (kept in `g` for `me`), 401 without one, 403 for a read-only user's write."""
        path = (self.d.auth.get("client_credentials") or {}).get("path")
        if path and request.path == f"/{self.d.vendor}{path}":
            return None  # the token endpoint checks the client itself
        g.sandbox_caller = self.caller()
        if g.sandbox_caller is None:
            return self.v.error(401, self.d.errors.get("unauthorized", "Not Authorized"))
        if g.sandbox_caller.get("read_only") and request.method not in ("GET", "HEAD"):
            return self.v.error(403, self.d.errors.get("forbidden", "Forbidden"))
        return None

    def caller(self) -> dict[str, Any] | None:
        """A bearer token; or basic credentials of a described user (`auth.basic`), or whose password is a token
        registered for the vendor (/_control/tokens: the hardening suite's recognisable secrets)."""
        info = token_info(self.d.vendor, bearer_token())
        if info is not None:
            return info
        given = request.authorization if request.authorization and request.authorization.type == "basic" else None
        if given is None:
            return None
        for user in self.d.auth.get("basic") or ():
            if secrets.compare_digest(str(user["username"]), given.username or "") and secrets.compare_digest(str(user["password"]), given.password or ""):
                return {"subject": str(user.get("user") or ""), "read_only": bool(user.get("read_only"))}
        registered = token_info(self.d.vendor, given.password or "")
        return {"subject": str(registered.get("subject") or ""), "read_only": False} if registered else None

    def client_credentials_token(self) -> Response | tuple[Response, int]:
        """OAuth 2.0 client credentials at the vendor's token path: form-encoded only; a described client, or a client
        secret registered as a token for the vendor, gets a bearer token that expires."""
        rules = self.d.auth["client_credentials"]
        refused = rules.get("refused") or {"error": "invalid_client", "error_description": "access_denied"}
        if request.mimetype != "application/x-www-form-urlencoded":
            return jsonify({**refused, "error": "invalid_request"}), 400
        form = request.form.to_dict()
        if form.get("grant_type") != "client_credentials":
            return jsonify({**refused, "error": "unsupported_grant_type"}), 400
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        clients = rules.get("clients") or ()
        subject = next(
            (str(c.get("user") or "") for c in clients if c["client_id"] == client_id and secrets.compare_digest(str(c["client_secret"]), secret)), None
        )
        registered = token_info(self.d.vendor, secret) if subject is None and client_id else None
        if registered is not None:
            subject = str(registered.get("subject") or "")
        if subject is None:
            return jsonify(refused), 401
        ttl = int(rules.get("ttl", 1800))
        token = issue_static_token(self.d.vendor, ttl=ttl, subject=subject or "sandbox-admin")
        return jsonify({"access_token": token, "scope": rules.get("scope", ""), "token_type": "Bearer", "expires_in": ttl - 1})

    # ---- records as answered
    def link_base(self) -> str:
        """Where a reference's link points: this stand-in's own table URLs."""
        return request.host_url.rstrip("/") + f"/{self.d.vendor}{self.d.base_path}{self.d.references.get('link_path', '')}"

    def shown(self, collection: Collection, record: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        bare = str(query.get(self.d.references.get("exclude_param", ""), "")).lower() == "true"
        return self.v.records.present(collection, record, query.get(self.d.fields_param), link_base=self.link_base(), bare_refs=bare)

    def location(self, collection: Collection, record: dict[str, Any]) -> dict[str, str]:
        return {"Location": f"{self.link_base()}/{collection.resource_type}/{record[self.v.records.id_field()]}"}

    # ---- lists
    def filtered(self, collection: Collection, rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
        """The rows an encoded query selects, in its order; `ref.field` terms read through a (single) reference."""
        known = set(collection.defaults) | {k for r in rows for k in r}

        def value_of(row: dict[str, Any], name: str) -> str:
            head, _, rest = name.partition(".")
            value = row.get(head)
            target = collection.refs.get(head)
            if rest and isinstance(target, str):
                value = (self.v.records.table(target).get(str(value)) or {}).get(rest)
            return "" if value is None else str(value)

        return encoded_query.apply(rows, query, value_of=value_of, known=lambda name: name.split(".", 1)[0] in known)

    def page(self, collection: Collection, rows: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """One offset page and its headers: an RFC 8288 Link (first/prev/next/last) when there is more than one page,
        and the total count."""
        paging = self.d.paging
        limit_param, offset_param = paging.get("limit_param", "limit"), paging.get("offset_param", "offset")
        limit = min(max(int(query.get(limit_param) or paging.get("default_limit", 10000)), 1), int(paging.get("max_limit", 10000)))
        offset = max(int(query.get(offset_param) or 0), 0)
        total = len(rows)
        chunk = [self.shown(collection, r, query) for r in rows[offset : offset + limit]]
        headers = {paging.get("total_header", "X-Total-Count"): str(total)}
        if total > limit:
            here = request.host_url.rstrip("/") + request.path

            def link(start: int, rel: str) -> str:
                return f'<{here}?{urlencode({**query, limit_param: str(limit), offset_param: str(start)})}>;rel="{rel}"'

            links = [link(0, "first")]
            if offset > 0:
                links.append(link(max(offset - limit, 0), "prev"))
            if offset + limit < total:
                links.append(link(offset + limit, "next"))
            links.append(link(((total - 1) // limit) * limit, "last"))
            headers["Link"] = ",".join(links)
        return chunk, headers
