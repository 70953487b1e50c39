"""Drive the real OAuth redirect: Bastion page → sandbox consent (Allow) → Bastion callback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests


def consent(authorize_url: str, decision: str = "allow") -> str:
    """Act as the person on the vendor's consent page; return the callback URL the vendor redirects to."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200 and "Authorize Bastion" in page.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    answer = requests.post(authorize_url.split("?")[0], data={**params, "decision": decision}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return answer.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def start_connect(client, sandbox: str, display_name: str = "Demo") -> str:
    response = client.post("/integrations/connect/demo/", {"display_name": display_name, "base_url": f"{sandbox}/demo", "auth_method": "oauth2"})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def oauth_connect(client, sandbox: str, display_name: str = "Demo"):
    """Connect the demo vendor through the whole OAuth redirect; return the callback response."""
    return client.get(local(consent(start_connect(client, sandbox, display_name))))


def token_calls(sandbox: str) -> int:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "demo"}, timeout=5).json()
    return sum(1 for r in log if r["path"] == "/demo/oauth/token" and r["method"] == "POST")
