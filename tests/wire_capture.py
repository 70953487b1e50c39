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

_LOOPBACK = re.compile(r"(?P<host>127\.0\.0\.1|localhost|\[::1\]|testserver):(?P<port>\d{2,5})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_ISO_TIME_ENCODED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}%3A\d{2}(?:%3A\d{2}(?:\.\d+)?)?(?:Z|%2B\d{2}%3A?\d{2}|-\d{2}%3A?\d{2})?")
_EPOCH = re.compile(r"(?<!\d)1[6-9]\d{8}(?:\.\d+|\d{3})?(?!\d)")
# Random tokens (generated credentials, idempotency markers): 16+ hex digits mixing digits and letters.
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])")
_BASIC = re.compile(r"Basic ([A-Za-z0-9+/]+=*)")
_HTTP_DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
# Values a server chose (ids it assigned, tokens it minted) are learnt from its answers: words of 6+ characters with a digit
# and a letter. A later request that sends one back shows it numbered, in the order the answers gave them.
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
    """Per-test placeholders: loopback ports, uuids and random hex numbered by first appearance, times reduced to their shape."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.values: dict[str, int] = {}
        self.replacements: list[tuple[str, str]] = []
        self.server_values: dict[str, int] = {}

    def learn(self, tokens: list[str]) -> None:
        """Values a server answered with: shown as <server-N> wherever a later request carries them."""
        for token in tokens:
            self.server_values.setdefault(token, len(self.server_values) + 1)

    def _server(self, match: re.Match[str]) -> str:
        index = self.server_values.get(match.group(0))
        return match.group(0) if index is None else f"<server-{index}>"

    def _port(self, match: re.Match[str]) -> str:
        return f"loopback-{self.ports.setdefault(match.group('port'), len(self.ports) + 1)}"

    def _numbered(self, kind: str, value: str, canonical: str) -> str:
        # Numbered, so a value sent twice still reads as the same value and two different ones stay apart.
        index = self.values.setdefault(canonical, len(self.values) + 1)
        return f"<{kind}-{index}>"

    def _uuid(self, match: re.Match[str]) -> str:
        value = match.group(0)
        form = ("hyphens" if "-" in value else "plain") + ("-upper" if value != value.lower() else "")
        return self._numbered(f"uuid:{form}", value, value.lower().replace("-", ""))

    def _hex(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if not (re.search(r"[0-9]", value) and re.search(r"[a-fA-F]", value)):
            return value  # a word or a number, not a random token
        return self._numbered(f"hex{len(value)}", value, value.lower())

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
        if self.server_values:
            text = _TOKEN.sub(self._server, text)
        text = _LOOPBACK.sub(self._port, text)
        text = _UUID.sub(self._uuid, text)
        text = _ISO_TIME.sub(self._shape, text)
        text = _ISO_TIME_ENCODED.sub(self._shape, text)
        text = _EPOCH.sub(self._shape, text)
        text = _HTTP_DATE.sub(self._shape, text)
        return _HEX.sub(self._hex, text)

    def entry(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The normalised form of one recorded request (raw: method, url, headers, body)."""
        parts = urlsplit(raw["url"])
        query = sorted((self.text(k), self.text(v)) for k, v in parse_qsl(parts.query, keep_blank_values=True))
        headers = {name: self.text(value) for name, value in sorted(raw["headers"].items(), key=lambda kv: kv[0].lower())}
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


def server_tokens(text: str) -> list[str]:
    """The words of an answer that look chosen by the server (a digit and a letter, 6+ characters), in order."""
    return [t for t in dict.fromkeys(_TOKEN.findall(text)) if re.search(r"[0-9]", t) and re.search(r"[A-Za-z]", t)]


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
