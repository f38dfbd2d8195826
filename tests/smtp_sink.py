"""A real SMTP server for the tests (aiosmtpd): every accepted message is written to a folder as
<n>.eml *before* the 250 reply, so an accepted message is always on disk.

usage: python smtp_sink.py PORT DIRECTORY [DELAY_MS [LMTP_PORT USERS_FILE]]

With LMTP_PORT and USERS_FILE (lines `user:password`), it also requires SMTP AUTH (PLAIN or
LOGIN, over plaintext: loopback only) from those users and relays each accepted message over
LMTP to 127.0.0.1:LMTP_PORT (a real IMAP server's delivery), so that sent mail arrives.
"""
import asyncio
import os
import signal
import sys
import time

import smtplib

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, directory, delay, lmtp_port=None):
        self.directory = directory
        self.delay = delay
        self.lmtp_port = lmtp_port

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        path = os.path.join(self.directory, f"{time.time_ns()}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        if self.lmtp_port:
            content = envelope.original_content or envelope.content
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, content)
        return "250 Message accepted for delivery"


class Users:
    def __init__(self, path):
        with open(path) as f:
            self.users = dict(line.rstrip("\n").split(":", 1) for line in f if ":" in line)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        ok = self.users.get(login) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False)


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    delay = int(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0
    os.makedirs(directory, exist_ok=True)
    if len(sys.argv) > 5:
        controller = Controller(Sink(directory, delay, int(sys.argv[4])), hostname="127.0.0.1", port=port,
                                authenticator=Users(sys.argv[5]), auth_required=True, auth_require_tls=False)
    else:
        controller = Controller(Sink(directory, delay), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
