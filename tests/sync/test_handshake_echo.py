"""What a webhook handshake may echo back: sane tokens and X- headers only, never a header a proxy or browser acts on."""

from __future__ import annotations

import pytest

from sync.services.webhooks import _challenge_answer


def test_a_sane_token_and_header_are_echoed_with_nosniff():
    answer = _challenge_answer("", {"X-Hook-Secret": "abc123"})
    assert answer.status == 200 and answer.text == "" and answer.headers["X-Hook-Secret"] == "abc123"
    assert answer.headers["X-Content-Type-Options"] == "nosniff" and answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "token, headers",
    [
        ("", None),  # nothing to echo
        ("x" * 1025, None),
        ("line\nbreak", None),
        ("é", None),
        ("", {"Set-Cookie": "a=b"}),  # not an X- header
        ("", {"X-Hook-Secret": ""}),
        ("", {"X-Hook-Secret": "a\r\nSet-Cookie: a=b"}),
        ("", {"X-Accel-Redirect": "/internal/secrets"}),  # nginx would serve an internal location
        ("", {"X-Sendfile": "/etc/passwd"}),
        ("", {"x-content-type-options": "sniff"}),  # would undo nosniff
        ("", {"X-Frame-Options": "ALLOWALL"}),
        ("", {"X-Hoök": "v"}),
    ],
)
def test_anything_else_is_a_400_that_echoes_nothing(token, headers):
    answer = _challenge_answer(token, headers)
    assert answer.status == 400 and answer.text is None
    assert not {name for name in answer.headers if name.lower().startswith("x-") and name not in ("X-Content-Type-Options",)}
