"""Scripts run only from Bastion's own files: the CSP has no 'unsafe-inline' for scripts and no template carries one."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client

from common.middleware import CONTENT_SECURITY_POLICY

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:json|ld\+json)\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def _script_src() -> str:
    return next(part.strip() for part in CONTENT_SECURITY_POLICY.split(";") if part.strip().startswith("script-src"))


def test_script_src_allows_only_our_own_files():
    assert _script_src() == "script-src 'self'"
    assert "object-src 'none'" in CONTENT_SECURITY_POLICY


def test_no_template_has_an_inline_script_handler_or_javascript_url():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL):
            offenders += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert offenders == []


def test_the_header_is_sent_on_pages_and_the_api_docs(db):
    for url in ("/accounts/login/", "/api/docs/"):
        response = Client().get(url)
        assert response.status_code == 200
        assert "script-src 'self';" in response["Content-Security-Policy"] and "'unsafe-inline'" not in _script_src()
    docs = Client().get("/api/docs/").content.decode()
    assert not INLINE_SCRIPT.search(docs), "Swagger UI's initializer must come from a file"
    assert Client().get("/api/docs/?script").status_code == 200
