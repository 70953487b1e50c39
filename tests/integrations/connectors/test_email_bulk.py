"""send_email in bulk against a REAL local SMTP server (aiosmtpd): each message in its own session, each payload its own
result or error, at most max_connections sessions at once."""

from __future__ import annotations

import asyncio
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from integrations.connectors.base import ActionResult
from integrations.connectors.email import EmailConnector, message_id_for
from integrations.errors import ApiBadRequest
from tests.integrations.connectors.test_email import Capture, _free_port

SENDER = "crisis@acme.example"
PEOPLE = ["ava.chen@acme.example", "marcus.okafor@acme.example", "priya.raman@acme.example", "liam.novak@acme.example", "emma.rossi@acme.example"]


class Meeting(Capture):
    """Capture whose DATA waits until `pair` messages are in DATA together (or no more can come): proof of side-by-side sessions.

    The wait ends on an event, never on the clock; the deadline only keeps a sequential sender from hanging the test.
    """

    def __init__(self, expected: int, pair: int) -> None:
        super().__init__()
        self.expected, self.pair = expected, pair
        self.in_data = 0
        self.most_in_data = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        deadline = time.monotonic() + 5  # below the client's 10 s timeout: a sequential sender fails the count, not the send
        while self.in_data < self.pair and self.expected - len(self.envelopes) > self.in_data and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.in_data -= 1
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp_server():
    capture = Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, capture
    controller.stop()


def connector(controller: Controller, **config) -> EmailConnector:
    return EmailConnector(config={"host": "127.0.0.1", "port": controller.port, "from_email": f"Bastion <{SENDER}>", **config})


def notification(to: str) -> dict:
    return {"to": [to], "subject": "SEV1: war room open", "body": f"{to}: join the war room now."}


def delivered(capture: Capture) -> dict[str, list]:
    """Recipient → the Message-IDs that reached the server for them."""
    by_recipient: dict[str, list] = {}
    for _sender, recipients, raw in capture.envelopes:
        message_id = message_from_bytes(raw, policy=policy.default)["Message-ID"]
        for recipient in recipients:
            by_recipient.setdefault(recipient, []).append(message_id)
    return by_recipient


def test_one_refused_recipient_fails_only_its_own_message(smtp_server):
    controller, capture = smtp_server
    recipients = [*PEOPLE[:2], "legal@blocked.example", *PEOPLE[2:4]]  # the server refuses blocked.example at RCPT
    idempotency_keys = [f"run-1:notify:{i}" for i in range(5)]
    results = connector(controller).perform_bulk("send_email", [notification(to) for to in recipients], idempotency_keys=idempotency_keys)

    assert isinstance(results[2], ApiBadRequest) and "refused the recipients" in str(results[2])
    sent = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, ActionResult) and r.created for r in sent), results
    expected_ids = [message_id_for(key, SENDER) for i, key in enumerate(idempotency_keys) if i != 2]
    assert [r.external_id for r in sent] == expected_ids and len(set(expected_ids)) == 4  # each payload its own Message-ID
    assert [r.data["to"] for r in sent] == [[to] for to in PEOPLE[:4]]
    # Each of the four delivered exactly once, in its own envelope, with its own Message-ID; nothing for the refused one.
    assert delivered(capture) == {to: [message_id] for to, message_id in zip(PEOPLE[:4], expected_ids, strict=True)}
    assert len(capture.envelopes) == 4
    bodies = {tuple(rcpt): message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content().strip() for _f, rcpt, raw in capture.envelopes}
    assert bodies == {(to,): f"{to}: join the war room now." for to in PEOPLE[:4]}


def test_an_invalid_address_is_its_own_error_and_sends_nothing_for_it(smtp_server):
    controller, capture = smtp_server
    payloads = [notification(PEOPLE[0]), notification("not-an-address"), {"to": [PEOPLE[1]], "subject": " ", "body": "x"}, notification(PEOPLE[2])]
    results = connector(controller).perform_bulk("send_email", payloads, idempotency_keys=[f"run-2:{i}" for i in range(4)])
    assert isinstance(results[1], ApiBadRequest) and "not an email address" in str(results[1])
    assert isinstance(results[2], ApiBadRequest) and "subject" in str(results[2])
    assert [r.external_id for r in (results[0], results[3])] == [message_id_for("run-2:0", SENDER), message_id_for("run-2:3", SENDER)]
    assert sorted(delivered(capture)) == [PEOPLE[0], PEOPLE[2]] and len(capture.envelopes) == 2


def test_sessions_go_side_by_side_up_to_max_connections():
    capture = Meeting(expected=5, pair=2)
    controller = Controller(capture, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        results = connector(controller, max_connections="2").perform_bulk(
            "send_email", [notification(to) for to in PEOPLE], idempotency_keys=[f"run-3:{i}" for i in range(5)]
        )
    finally:
        controller.stop()
    assert all(isinstance(r, ActionResult) for r in results), results
    assert sorted(delivered(capture)) == sorted(PEOPLE) and len(capture.envelopes) == 5
    assert capture.most_in_data == 2  # two sessions met in DATA, and no third one was seen beside them


def test_one_session_at_a_time_when_the_relay_allows_one():
    capture = Meeting(expected=3, pair=1)  # nobody waits: only counts who is in DATA together
    controller = Controller(capture, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        results = connector(controller, max_connections="1").perform_bulk(
            "send_email", [notification(to) for to in PEOPLE[:3]], idempotency_keys=[f"run-4:{i}" for i in range(3)]
        )
    finally:
        controller.stop()
    assert all(isinstance(r, ActionResult) for r in results), results
    assert capture.most_in_data == 1 and len(capture.envelopes) == 3
