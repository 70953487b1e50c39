"""An SMTP sink beside the sandbox so the demo's email notifications land somewhere visible (the inspector)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from sandbox.state import STORE


class _CaptureHandler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content, policy=default_policy)
        recipients = ", ".join(envelope.rcpt_tos)
        STORE.record_created("email", "message", message.get("Message-ID", "") or f"msg-{STORE.next_id()}", f"To {recipients}: {message.get('Subject', '')}")
        return "250 Message accepted for delivery"


def start_smtp_sink(host: str = "127.0.0.1", port: int = 2525) -> Controller:
    """Start the sink in a background thread; returns the controller (call .stop() to end it)."""
    controller = Controller(_CaptureHandler(), hostname=host, port=port)
    controller.start()
    return controller
