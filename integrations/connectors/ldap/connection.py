"""The LDAP connection: TLS modes, the SSRF-pinned server, binds, and paged searches parked between pages of one run."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc

from integrations.connectors.ldap.errors import _ldap_errors
from integrations.connectors.ldap.schema import PAGED_RESULTS_OID
from integrations.errors import ApiBadRequest, ApiForbidden, ApiNotFound, ApiUnauthorized
from integrations.ssrf import VettedAddress, host_unresolved, is_ip_literal, vet_outbound

logger = logging.getLogger("integrations.connectors.ldap")  # the connector's one logger name, as before the package split

PARKED_TTL = 600.0  # seconds an idle parked paged search keeps its connection


@dataclass
class _ParkedSearch:
    fingerprint: str
    conn: Any
    lookup_conn: Any
    group_index: Any
    member_of: Any
    dn_ids: Any
    in_chain: Any
    parked_at: float

    def close(self) -> None:
        for conn in (self.conn, self.lookup_conn):
            if conn is not None:
                try:
                    conn.unbind()
                except ldap_exc.LDAPException:
                    logger.info("ldap.unbind_failed")


_PARKED: dict[str, _ParkedSearch] = {}
_PARKED_LOCK = threading.Lock()


class _PinnedServer(ldap3.Server):
    """An ldap3 Server that connects only to addresses the SSRF guard vetted; `host` stays the name TLS checks."""

    def __init__(self, host: str, addresses: list[VettedAddress], **kwargs: Any):
        super().__init__(host, **kwargs)
        # ldap3's own address_info would run getaddrinfo again at open time (a DNS-rebinding window).
        self._address_info = [[a.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", a.sockaddr, None, None] for a in addresses]

    @property
    def address_info(self) -> list[list[Any]]:
        return self._address_info


class LdapConnectionMixin:
    """For LdapConnector: open, bind and page; a paged cookie only works on the connection that issued it."""

    config: dict[str, Any]
    credentials: dict[str, Any]
    page_size: int
    _conn: ldap3.Connection | None
    _lookup_conn: ldap3.Connection | None
    _tls_mode: str
    _session: str
    _dn_ids: dict[str, str]
    _group_index: dict[str, dict[str, Any]] | None
    _member_of: dict[str, set[str]]
    _user_groups_in_chain: dict[str, set[str]] | None

    def _server(self) -> tuple[ldap3.Server, str]:
        url = str(self.config.get("server_url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ApiBadRequest(f"Server URL must look like ldaps://host:636 or ldap://host:389, got {url!r}.")
        verify = self.config.get("tls_verify", True) not in (False, "false", "0", 0)
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
            ca_certs_data=self.config.get("ca_cert") or None,
            version=ssl.PROTOCOL_TLS_CLIENT if verify else ssl.PROTOCOL_TLS,
            sni=None if is_ip_literal(parts.hostname) else parts.hostname,
        )
        use_ssl = parts.scheme == "ldaps"
        start_tls = self.config.get("start_tls", True) not in (False, "false", "0", 0)
        if use_ssl:
            mode = "ldaps"
        elif start_tls:
            mode = "starttls"
        elif self.config.get("allow_plain") in (True, "true", "1", 1):
            mode = "plain"
        else:
            raise ApiForbidden("Refusing to send the bind password unencrypted: use ldaps://, StartTLS, or set allow_plain for a lab directory.")
        timeout = int(self.config.get("timeout") or 10)
        try:
            port = parts.port or (636 if use_ssl else 389)
        except ValueError as exc:
            raise ApiBadRequest(f"Server URL has an invalid port: {url!r}.") from exc
        # The SSRF guard: resolve once, vet every answer, and let ldap3 connect only to those addresses.
        try:
            addresses = vet_outbound(parts.hostname, port, parts.scheme)
        except socket.gaierror as exc:  # a resolver outage is retried; only a refused answer is UnsafeBaseUrl
            raise host_unresolved(parts.hostname, exc) from exc
        server = _PinnedServer(parts.hostname, addresses, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE, connect_timeout=timeout)
        return server, mode

    def connection(self) -> ldap3.Connection:
        """The bound connection, opened once per connector instance (paged cookies are tied to it)."""
        if self._conn is not None and self._conn.bound and not self._conn.closed:
            return self._conn
        self._conn = self._bind()
        self._session = secrets.token_hex(8)
        return self._conn

    def lookup_connection(self) -> ldap3.Connection:
        """A second connection for lookups between pages: another search on the paging connection voids its cookie."""
        if self._lookup_conn is not None and self._lookup_conn.bound and not self._lookup_conn.closed:
            return self._lookup_conn
        self._lookup_conn = self._bind()
        return self._lookup_conn

    def _bind(self) -> ldap3.Connection:
        server, mode = self._server()
        bind_dn = str(self.credentials.get("bind_dn") or "")
        password = str(self.credentials.get("bind_password") or "")
        if not bind_dn or not password:
            # An empty password makes a simple bind anonymous (RFC 4513 5.1.2): never let that pass for a login.
            raise ApiUnauthorized("The service account DN and password are both required.")
        conn = ldap3.Connection(
            server,
            user=bind_dn,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=True,
            receive_timeout=int(self.config.get("timeout") or 30),
            read_only=True,
        )
        with _ldap_errors("bind"):
            conn.open()
            if mode == "starttls":
                conn.start_tls()
            conn.bind()
        self._tls_mode = mode
        return conn

    def close(self) -> None:
        for conn in (self._conn, self._lookup_conn):
            if conn is not None:
                try:
                    conn.unbind()
                except ldap_exc.LDAPException:
                    logger.info("ldap.unbind_failed")
        self._conn = self._lookup_conn = None

    def _paged(self, base: str, search_filter: str, attributes: list[str], state: dict[str, Any]) -> tuple[list[dict], dict | None]:
        """One page of a paged search (RFC 2696).

        The sync engine builds a new connector for every page, but a paged cookie only works on the connection that
        issued it: the open connection (and the run's caches) wait in this process's registry under the run's session
        token. When the next page lands in another process, or the connection is gone, the search is replayed from the
        start and the entries already delivered are skipped (correct, slower).
        """
        cookie = base64.b64decode(state["cookie"]) if state.get("cookie") else None
        offset = int(state.get("offset") or 0)
        if cookie is not None and state.get("session") != self._session:
            self._adopt(str(state.get("session") or ""))
        conn = self.connection()
        if cookie is not None and state.get("session") != self._session:
            entries, cookie = self._skip_to(conn, base, search_filter, attributes, offset)
        else:
            try:
                entries, cookie = self._search_page(conn, base, search_filter, attributes, cookie)
            except ApiBadRequest as exc:
                if cookie is None or "cookie" not in str(exc).lower():
                    raise
                logger.info("ldap.paged_cookie_expired", extra={"offset": offset})
                entries, cookie = self._skip_to(conn, base, search_filter, attributes, offset)
        if not cookie:
            return entries, None
        return entries, {"cookie": base64.b64encode(cookie).decode(), "offset": offset + len(entries), "session": self._session}

    def _fingerprint(self) -> str:
        """Who may adopt a parked connection: the same server, account, password and search."""
        material = "\x00".join(
            str(v)
            for v in (
                self.config.get("server_url"),
                self.credentials.get("bind_dn"),
                self.credentials.get("bind_password"),
                self.config.get("base_dn"),
                self.config.get("user_filter"),
                self.config.get("flavor"),
            )
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def _park(self) -> None:
        """Leave the open connection and the run's caches for whichever connector reads the next page in this process."""
        now = time.monotonic()
        with _PARKED_LOCK:
            for token, parked in list(_PARKED.items()):
                if now - parked.parked_at > PARKED_TTL:
                    _PARKED.pop(token, None)
                    parked.close()
            _PARKED[self._session] = _ParkedSearch(
                self._fingerprint(), self._conn, self._lookup_conn, self._group_index, self._member_of, self._dn_ids, self._user_groups_in_chain, now
            )

    def _adopt(self, session: str) -> None:
        with _PARKED_LOCK:
            parked = _PARKED.pop(session, None)  # exclusive: a duplicate step replays instead of sharing the socket
        if parked is None:
            return
        if parked.fingerprint != self._fingerprint() or parked.conn is None or not parked.conn.bound or parked.conn.closed:
            parked.close()
            return
        self._conn, self._lookup_conn, self._session = parked.conn, parked.lookup_conn, session
        self._group_index, self._member_of, self._dn_ids, self._user_groups_in_chain = parked.group_index, parked.member_of, parked.dn_ids, parked.in_chain
        self._tls_mode = self._tls_mode or "adopted"

    def _search_page(self, conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str], cookie: bytes | None) -> tuple[list[dict], bytes]:
        with _ldap_errors("search"):
            try:
                conn.search(base, search_filter, search_scope=ldap3.SUBTREE, attributes=attributes, paged_size=self.page_size, paged_cookie=cookie)
            except ldap_exc.LDAPNoSuchObjectResult as exc:
                raise ApiNotFound(f"The base DN {base!r} does not exist on the server.") from exc
        entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
        control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        return entries, (control.get("value") or {}).get("cookie") or b""

    def _skip_to(self, conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str], offset: int) -> tuple[list[dict], bytes]:
        skipped = 0
        cookie: bytes | None = None
        while True:
            entries, cookie = self._search_page(conn, base, search_filter, attributes, cookie)
            if skipped + len(entries) > offset or not cookie:
                return entries[max(0, offset - skipped) :], cookie
            skipped += len(entries)
