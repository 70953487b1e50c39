"""Test doubles at the DNS boundary only: a scripted getaddrinfo, plus a real local HTTP(S) server that records what reached it."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REAL_GETADDRINFO = socket.getaddrinfo


class FakeDns:
    """Answers scripted names in turn (the last answer repeats); every other name goes to the real resolver."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def answer(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = [list(a) for a in answers]

    def count(self, name: str) -> int:
        return self.lookups.count(name)

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list[tuple]:  # noqa: A002
        name = host.rstrip(".").lower() if isinstance(host, str) else host
        if name not in self.answers:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        self.lookups.append(name)
        queue = self.answers[name]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        number = int(port or 0)
        results = []
        for ip in ips:
            if ":" in ip:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number)))
        return results


@dataclass
class Seen:
    path: str
    host: str
    authorization: bool
    sni: str | None


@dataclass
class LocalServer:
    """A real HTTP(S) server on 127.0.0.1: `/redirect?to=URL` answers 302, anything else 200 JSON."""

    port: int
    scheme: str
    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def url(self, host: str, path: str = "/") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def start_server(*, cert: tuple[Path, Path] | None = None) -> LocalServer:
    """Serve on a free loopback port in a thread (HTTPS when `cert` = (cert_path, key_path)); stop() when done."""
    sni_by_socket: dict[int, str | None] = {}
    holder: dict[str, LocalServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            local = holder["server"]
            sni = sni_by_socket.get(id(self.connection)) if cert else None
            local.seen.append(Seen(self.path, self.headers.get("Host", ""), "Authorization" in self.headers, sni))
            query = parse_qs(urlsplit(self.path).query)
            if urlsplit(self.path).path == "/redirect":
                self.send_response(302)
                self.send_header("Location", query["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"ok": True, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert[0]), str(cert[1]))

        def remember_sni(ssl_socket: ssl.SSLSocket, server_name: str | None, _context: ssl.SSLContext) -> None:
            sni_by_socket[id(ssl_socket)] = server_name

        context.sni_callback = remember_sni
        server.socket = context.wrap_socket(server.socket, server_side=True)
    local = LocalServer(port=server.server_address[1], scheme="https" if cert else "http", _server=server)
    holder["server"] = local
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return local


def make_cert(directory: Path, dns_name: str) -> tuple[Path, Path]:
    """A self-signed certificate valid for `dns_name` only (no IP address in it); returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{dns_name}.pem", directory / f"{dns_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path
