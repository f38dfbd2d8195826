"""A real SMTP server for the tests (aiosmtpd): every accepted message is written to a folder as
<n>.eml *before* the 250 reply, so an accepted message is always on disk.

usage: python smtp_sink.py PORT DIRECTORY [DELAY_MS [LMTP_PORT [USERS_FILE]]]
                           [--xoauth2 INTROSPECTION_URL] [--tls starttls|tls --cert PEM --key PEM]

With LMTP_PORT, each accepted message is also relayed over LMTP to 127.0.0.1:LMTP_PORT (a real
IMAP server's delivery), so that sent mail arrives. Sign-in, when asked for:
- USERS_FILE (lines `user:password`): SMTP AUTH PLAIN or LOGIN from those users, over plaintext
  (loopback only);
- --xoauth2 URL: SMTP AUTH XOAUTH2 only, as Gmail and Microsoft 365 take it: the initial response
  is base64 of `user=<address>\\x01auth=Bearer <token>\\x01\\x01`, and the token is checked by
  POSTing `token=<token>` to URL (RFC 7662 introspection, as Dovecot's oauth2 passdb does): it
  passes when the answer is `{"active": true, "email": <address>}`. A refused token gets Gmail's
  answer: `334 <base64 JSON error>`, then, after the client's empty line, `535 5.7.8`. Every
  attempt is appended to DIRECTORY/auth.jsonl (mechanism, user, token, accepted), for the tests.
--tls starttls offers STARTTLS and requires it before AUTH (port 587 style); --tls tls speaks TLS
from the first byte (port 465 style); with the certificate and key given.
"""
import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import smtplib
import ssl
import time
import urllib.parse
import urllib.request
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult


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


class XOAuth2Sink(Sink):
    """A sink that signs senders in with SASL XOAUTH2 only (aiosmtpd finds `auth_XOAUTH2`)."""

    def __init__(self, directory, delay, lmtp_port, introspection_url):
        super().__init__(directory, delay, lmtp_port)
        self.introspection_url = introspection_url

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode the XOAUTH2 response")
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        user, token = parse_xoauth2(blob)
        if user is None:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Malformed XOAUTH2 response")
        loop = asyncio.get_running_loop()
        accepted = await loop.run_in_executor(None, self.introspect, user, token)
        self.record({"mechanism": "XOAUTH2", "user": user, "token": token, "accepted": accepted})
        if accepted:
            return AuthResult(success=True, auth_data=user)
        # Google's XOAUTH2 error: a JSON challenge the client answers with an empty line.
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        if await server.challenge_auth(error) is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted: the OAuth token is not active")

    def introspect(self, user, token):
        body = urllib.parse.urlencode({"token": token}).encode()
        request = urllib.request.Request(self.introspection_url, data=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.load(response)
        except (OSError, ValueError):
            return False
        return answer.get("active") is True and answer.get("email") == user

    def record(self, attempt):
        with open(os.path.join(self.directory, "auth.jsonl"), "a") as f:
            f.write(json.dumps(attempt) + "\n")


def parse_xoauth2(blob):
    """`(user, token)` of `user=…\\x01auth=Bearer …\\x01\\x01`, or `(None, None)`."""
    try:
        text = blob.decode()
    except UnicodeDecodeError:
        return None, None
    if not text.endswith("\x01\x01"):
        return None, None
    fields = dict(part.split("=", 1) for part in text[:-2].split("\x01") if "=" in part)
    user, auth = fields.get("user"), fields.get("auth", "")
    if not user or not auth.startswith("Bearer ") or not auth[len("Bearer "):]:
        return None, None
    return user, auth[len("Bearer "):]


class Users:
    def __init__(self, path):
        with open(path) as f:
            self.users = dict(line.rstrip("\n").split(":", 1) for line in f if ":" in line)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        ok = self.users.get(login) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("delay_ms", type=int, nargs="?", default=0)
    parser.add_argument("lmtp_port", type=int, nargs="?")
    parser.add_argument("users_file", nargs="?")
    parser.add_argument("--xoauth2", metavar="INTROSPECTION_URL")
    parser.add_argument("--tls", choices=["starttls", "tls"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    options = parser.parse_args()
    os.makedirs(options.directory, exist_ok=True)
    delay = options.delay_ms / 1000
    kwargs = {"hostname": "127.0.0.1", "port": options.port}
    if options.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.cert, options.key)
        kwargs["tls_context" if options.tls == "starttls" else "ssl_context"] = context
    if options.xoauth2:
        handler = XOAuth2Sink(options.directory, delay, options.lmtp_port, options.xoauth2)
        # aiosmtpd counts only STARTTLS as TLS; with TLS from the first byte all is encrypted
        # (so its warning about AUTH without TLS does not apply).
        if options.tls == "tls":
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            logging.getLogger("mail.log").setLevel(logging.ERROR)
        kwargs.update(auth_required=True, auth_require_tls=options.tls == "starttls",
                      auth_exclude_mechanism=["PLAIN", "LOGIN"])
    elif options.users_file:
        handler = Sink(options.directory, delay, options.lmtp_port)
        kwargs.update(authenticator=Users(options.users_file), auth_required=True, auth_require_tls=False)
    else:
        handler = Sink(options.directory, delay, options.lmtp_port)
    controller = Controller(handler, **kwargs)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
