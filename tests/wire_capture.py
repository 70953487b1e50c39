"""Opt-in pytest plugin: record every outgoing HTTP request (normalised) to compare the wire before and after a refactor.

Enable with BASTION_WIRE_CAPTURE=/path/capture.jsonl and `-p tests.wire_capture`; compare two captures with
scripts/wire_capture.py. Without the variable the plugin does nothing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
import requests.adapters

ENV = "BASTION_WIRE_CAPTURE"

# Sandbox-control and harness calls are not a connector's wire.
IGNORED_PATH_PREFIXES = ("/_control/",)
# Headers whose value is chosen per run by the transport or the clock, never by the code under test.
DROPPED_HEADERS = {"date", "x-request-start"}

_LOOPBACK = re.compile(r"(?P<host>127\.0\.0\.1|localhost|\[::1\]|testserver)(?::|%3A)(?P<port>\d{2,5})")
_UUID = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?![0-9a-fA-F])")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_ISO_TIME_ENCODED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}%3A\d{2}(?:%3A\d{2}(?:\.\d+)?)?(?:Z|%2B\d{2}%3A?\d{2}|-\d{2}%3A?\d{2})?")
_EPOCH = re.compile(r"(?<![A-Za-z0-9])1[6-9]\d{8}(?:\.\d+|\d{3})?(?![A-Za-z0-9])")
# Random tokens (generated credentials, idempotency markers, ids derived from them): 16+ hex digits, or 20+ letters and
# digits, mixing both.
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{16,}|[0-9A-Za-z]{20,})(?![0-9A-Za-z])")
# Random URL-safe tokens (OAuth codes, minted secrets): 20+ characters mixing capitals, small letters and digits.
_URLSAFE = re.compile(
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z][A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z][A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"
)
# Ids the vendor sandbox draws at random for the deliveries it sends itself (no answer announces them): Slack event ids.
# Slack event ids, PagerDuty incident and subscription ids (all capitals, so not learnt as ids from the answers).
_SANDBOX_RANDOM = re.compile(r"(?<![A-Za-z0-9])Ev[0-9A-F]{10}(?![A-Za-z0-9])|(?<=/incidents/)P[A-Z0-9]{6}(?![A-Za-z0-9])|^P[A-Z0-9]{6}$")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Headers that carry a signature or a one-time challenge over per-run content: only their length is compared.
_SIGNED_HEADER = re.compile(r"signature|challenge", re.IGNORECASE)
_BASIC = re.compile(r"Basic ([A-Za-z0-9+/]+=*)")
_HTTP_DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
# Values a server chose (ids it assigned, tokens it minted) are learnt from its answers: words of 6+ characters with a digit
# and a letter. A later request that sends one back shows <server> in its place.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_.~-])[A-Za-z0-9][A-Za-z0-9_.~-]{5,}(?![A-Za-z0-9_.~-])")
LEARN_MAX_BYTES = 256 * 1024


class _State:
    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed at pytest_unconfigure
        self.test = "<collection>"
        self.seq = 0
        self.normaliser = Normaliser()


_state: _State | None = None
_original_send = requests.adapters.HTTPAdapter.send


class Normaliser:
    """Per-test placeholders: loopback ports numbered by first appearance; uuids, random hex and server-chosen values by kind;
    times reduced to their shape."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.values: dict[str, int] = {}
        self.replacements: list[tuple[str, str]] = []
        self.server_values: dict[str, int] = {}

    def learn(self, tokens: list[str]) -> None:
        """Values a server answered with: shown as <server> wherever a later request carries them."""
        for token in tokens:
            self.server_values.setdefault(token, len(self.server_values) + 1)

    def _server(self, match: re.Match[str]) -> str:
        return "<server>" if match.group(0) in self.server_values else match.group(0)

    def _port(self, match: re.Match[str]) -> str:
        return f"loopback-{self.ports.setdefault(match.group('port'), len(self.ports) + 1)}"

    @staticmethod
    def _numbered(kind: str, value: str, canonical: str) -> str:
        # Not numbered: concurrent calls (bulk chunks, parallel steps) meet random values in a different order each run.
        return f"<{kind}>"

    def _uuid(self, match: re.Match[str]) -> str:
        value = match.group(0)
        form = ("hyphens" if "-" in value else "plain") + ("-upper" if value != value.lower() else "")
        return self._numbered(f"uuid:{form}", value, value.lower().replace("-", ""))

    def _hex(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if not (re.search(r"[0-9]", value) and re.search(r"[a-fA-F]", value)):
            return value  # a word or a number, not a random token
        kind = "hex" if re.fullmatch(r"[0-9a-fA-F]+", value) else "alnum"
        return self._numbered(f"{kind}{len(value)}", value, value.lower())

    @staticmethod
    def _shape(match: re.Match[str]) -> str:
        # Digits only: a change of format (Z vs +00:00, seconds vs milliseconds) still shows.
        return "<" + re.sub(r"\d", "d", match.group(0)) + ">"

    def _basic(self, match: re.Match[str]) -> str:
        try:
            decoded = base64.b64decode(match.group(1), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return match.group(0)
        return f"Basic base64({self.text(decoded)})"

    def text(self, text: str) -> str:
        """Replace what differs per run (ports, uuids, random tokens, timestamps, registered values) with placeholders."""
        for value, placeholder in self.replacements:
            text = text.replace(value, placeholder)
        text = _BASIC.sub(self._basic, text)
        text = _JWT.sub("<jwt>", text)
        text = _SANDBOX_RANDOM.sub(lambda m: f"<sandbox-id{len(m.group(0))}>", text)
        if self.server_values:  # whole values first: a minted token holds runs the rules below would cut apart
            text = _TOKEN.sub(self._server, text)
        text = _LOOPBACK.sub(self._port, text)
        text = _UUID.sub(self._uuid, text)
        text = _ISO_TIME.sub(self._shape, text)
        text = _ISO_TIME_ENCODED.sub(self._shape, text)
        text = _URLSAFE.sub(lambda m: f"<token{len(m.group(0))}>", text)
        text = _HEX.sub(self._hex, text)
        text = _EPOCH.sub(self._shape, text)
        text = _HTTP_DATE.sub(self._shape, text)
        return text

    def entry(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The normalised form of one recorded request (raw: method, url, headers, body)."""
        parts = urlsplit(raw["url"])
        query = sorted((self.text(k), self.text(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True))
        headers = {
            name: f"<{len(value)} chars>" if _SIGNED_HEADER.search(name) else self.text(value)
            for name, value in sorted(raw["headers"].items(), key=lambda kv: kv[0].lower())
        }
        body = raw["body"]
        return {
            "method": raw["method"],
            "url": self.text(urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))),
            "query": query,
            "raw_query": self.text(parts.query),
            "headers": {name: value for name, value in headers.items() if name.lower() not in DROPPED_HEADERS},
            "body": self.text(body) if isinstance(body, str) else body,
        }


def register_volatile(value: str, placeholder: str) -> None:
    """A test-specific random value (a generated secret, a token) to show as `placeholder` in the capture."""
    if _state is not None and value:
        _state.normaliser.replacements.append((value, placeholder))


def _body(body: Any) -> Any:
    if body is None:
        return None
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(body).decode()}
    if not isinstance(body, str):
        return {"stream": type(body).__name__}
    return body


def _record(request: requests.PreparedRequest) -> None:
    assert _state is not None
    url = request.url or ""
    if urlsplit(url).path.startswith(IGNORED_PATH_PREFIXES):
        return
    raw = {"method": request.method, "url": url, "headers": dict(request.headers), "body": _body(request.body)}
    with _state.lock:
        _state.seq += 1
        entry = {"test": _state.test, "seq": _state.seq, **_state.normaliser.entry(raw), "raw": raw}
        _state.out.write(json.dumps(entry, sort_keys=True) + "\n")
        _state.out.flush()


def id_like(token: str) -> bool:
    """A digit and a letter (li76uio8nxhu, T-12): never a plain word, nor a date."""
    return bool(re.search(r"[A-Za-z]", token) and re.search(r"[0-9]", token)) and not re.search(r"\d{4}-\d{2}-\d{2}", token)


def server_tokens(text: str) -> list[str]:
    """The words of an answer that look chosen by the server, in order (timestamps are not ids: a fragment such as
    "41.123Z" would otherwise turn up as <server> in a later request that sends a time in the same second)."""
    return [t for t in dict.fromkeys(_TOKEN.findall(_ISO_TIME.sub(" ", text))) if id_like(t)]


def _learn(response: requests.Response) -> None:
    assert _state is not None
    length = int(response.headers.get("Content-Length") or 0)
    if length > LEARN_MAX_BYTES:
        return
    content = response.content  # the adapter was asked not to stream: reading it here changes nothing for the caller
    if len(content) > LEARN_MAX_BYTES:
        return
    tokens = server_tokens(content.decode("utf-8", errors="replace"))
    if not tokens:
        return
    with _state.lock:
        _state.seq += 1
        _state.normaliser.learn(tokens)
        _state.out.write(json.dumps({"test": _state.test, "seq": _state.seq, "learned": tokens}) + "\n")
        _state.out.flush()


def _capturing_send(self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
    if _state is not None:
        try:
            _record(request)
        except Exception as exc:  # noqa: BLE001 - capture must never change the run
            _state.out.write(json.dumps({"test": _state.test, "capture_error": repr(exc)}) + "\n")
    response = _original_send(self, request, *args, **kwargs)
    if _state is not None and not kwargs.get("stream", args[0] if args else False):
        try:
            _learn(response)
        except Exception as exc:  # noqa: BLE001 - capture must never change the run
            _state.out.write(json.dumps({"test": _state.test, "capture_error": repr(exc)}) + "\n")
    return response


def pytest_configure(config: pytest.Config) -> None:
    global _state
    path = os.environ.get(ENV)
    if not path or _state is not None:
        return
    _state = _State(path)
    requests.adapters.HTTPAdapter.send = _capturing_send  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    global _state
    if _state is None:
        return
    requests.adapters.HTTPAdapter.send = _original_send  # type: ignore[method-assign]
    _state.out.close()
    _state = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if _state is not None:
        with _state.lock:
            _state.test, _state.seq, _state.normaliser = item.nodeid, 0, Normaliser()
    yield
    if _state is not None:
        with _state.lock:
            _state.test = "<between tests>"
