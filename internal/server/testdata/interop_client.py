#!/usr/bin/env python3
"""An independent messager client, written from docs/protocol.md alone.

It exercises every row of version 1 against a running server and exits
non-zero on the first surprise. Usage: interop_client.py HOST PORT [FINGERPRINT]
(users alice/pw-alice, bob/pw-bob and carol/pw-carol must exist; the
server's CHECK interval must be short, e.g. 100ms).
"""
import hashlib
import socket
import ssl
import sys

HOST, PORT = sys.argv[1], int(sys.argv[2])
FINGERPRINT = sys.argv[3] if len(sys.argv) > 3 else None


class Conn:
    def __init__(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        # The certificate is self-signed: no CA can vouch for it, so CA
        # verification is off and the fingerprint given (sha256: and the hex
        # SHA-256 of the DER certificate) is pinned instead, as the page says.
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((HOST, PORT), timeout=5)
        self.s = ctx.wrap_socket(raw)
        if FINGERPRINT:
            got = "sha256:" + hashlib.sha256(self.s.getpeercert(binary_form=True)).hexdigest()
            if got != FINGERPRINT:
                raise AssertionError("certificate %s, pinned %s" % (got, FINGERPRINT))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed, buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def expect(self, want):
        while True:
            got = self.line()
            if got == b"CHECK \r\n" and want != got:
                continue
            if got != want:
                raise AssertionError("got %r, want %r" % (got, want))
            return

    def expect_closed(self):
        while True:
            try:
                got = self.line()
            except (EOFError, ConnectionError, ssl.SSLError):
                return
            if got != b"CHECK \r\n":
                raise AssertionError("got %r, want close" % got)


def login(user):
    c = Conn()
    c.send(b"AUTH %s pw-%s \r\n" % (user.encode(), user.encode()))
    c.expect(b"ACCEPT %s \r\n" % user.encode())
    return c


alice, bob = login("alice"), login("bob")
alice.send(b"MSG bob alice hello from python \r\n")
bob.expect(b"RELAY bob alice hello from python \r\n")
alice.send(b"MSG dave alice anyone?\r\n")
alice.expect(b"CNT <user not online> \r\n")
alice.send(b"MSG alice alice self\n")
alice.expect(b"RELAY alice alice self \r\n")
bob.expect(b"CHECK \r\n")  # liveness probe, no answer needed

bad = Conn()
bad.send(b"AUTH alice wrong\r\n")
bad.expect(b"END <incorrect username or password> \r\n")
bad.expect_closed()

early = Conn()
early.send(b"MSG bob alice too early\r\n")
early.expect(b"END * <incorrect protocol> \r\n")
early.expect_closed()

carol = login("carol")
carol.send(b"MSG bob mallory spoofed\r\n")
carol.expect(b"END * <incorrect protocol> \r\n")
carol.expect_closed()

carol = login("carol")
carol.send(b"MSG bob carol " + b"x" * 5000 + b"\r\n")
carol.expect(b"END * <line too long> \r\n")
carol.expect_closed()

again = login("alice")
alice.expect(b"END <logged in elsewhere> \r\n")
alice.expect_closed()
bob.send(b"MSG alice bob welcome back\r\n")
again.expect(b"RELAY alice bob welcome back \r\n")

again.send(b"END\r\n")
again.expect(b"END <end accepted> \r\n")
again.expect_closed()
bob.send(b"END bye\r\n")
bob.expect(b"END <end accepted> \r\n")
bob.expect_closed()
print("interop: all rows passed")
