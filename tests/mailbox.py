"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps what it receives (not a test module).

    def test_x(inbox):            # the fixture
        app = make_app(..., SMTP_URL=inbox.url)
        ...
        (recipients, message), = inbox.messages
"""

import socket
import threading
from email import message_from_bytes, policy

import pytest


class Inbox:
    """A real SMTP server on a free loopback port that keeps what it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.lock = threading.Lock()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{port}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def stop(self):
        self.controller.stop()


@pytest.fixture
def inbox():
    box = Inbox()
    yield box
    box.stop()
