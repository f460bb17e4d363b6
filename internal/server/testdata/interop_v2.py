#!/usr/bin/env python3
"""Version 2 of the messager protocol, checked from docs/protocol.md alone.

An independent client: nothing here comes from the Go code, only from the
protocol page. It exits non-zero on the first place where the server does
not do what the page says, naming the line sent, the line received and
the rule.

Usage: interop_v2.py HOST PORT FINGERPRINT MODE [ARGS]

  full N G M  the server offers presence=N and groups=G,M, lists the group
              "#Staff,alice,bob", gathers presence changes quickly, and has
              the users alice bob carol dave erin frank albert al-x al.y al_z
              u000..u104, each with the password pw-<name>
  off         presence and groups are switched off (users alice, bob)
  listed      only the listed groups "#Staff,alice,bob" and "#Lobby,*"
              exist (users alice, bob, carol)

Only the standard library is used. Every line is sent in the seed's shape:
a space before CRLF, one line per TLS record (one sendall each).
"""
import hashlib
import itertools
import re
import socket
import ssl
import sys
import threading
import time

HOST, PORT, FINGERPRINT, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ARGS = sys.argv[5:]

TIMEOUT = 3.0  # for an answer that should come at once
PRESENCE_WITHIN = 1.5  # "within about a second", with room for a slow machine
SETTLE = 0.5  # time after which a PRESENCE line that was going to come has come

NAME = r"[A-Za-z0-9_.-]{1,32}"
GROUP = r"#[A-Za-z0-9_.-]{1,32}"
NAME_RE = re.compile(NAME + r"\Z")
# The lines a version-1 session may ever see ("What a server sends").
V1_LINE = re.compile(
    r"(ACCEPT {n}|RELAY {n} {n} [^\x00-\x08\x0a-\x1f\x7f-\x9f]*[^ \t\x00-\x1f\x7f-\x9f]|"
    r"CNT <user not online>|CHECK|END (\* )?<[^>]*>)\Z".format(n=NAME))
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class Surprise(AssertionError):
    pass


def fail(msg):
    raise Surprise(msg)


def section(title):
    print("--", title, flush=True)


class Conn:
    """One TLS connection. Lines come back as text without the final " \\r\\n",
    after checking that the server sent exactly that ending."""

    tokens = itertools.count()

    def __init__(self, user=None, version=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # The server's certificate is self-signed, so there is no CA to check
        # it against: like a messager client, this one pins it instead. CA
        # verification is off and the fingerprint the Go test passes (sha256:
        # and the hex SHA-256 of the DER certificate) is compared below.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
        self.s = ctx.wrap_socket(raw)
        der = self.s.getpeercert(binary_form=True)
        got = "sha256:" + hashlib.sha256(der).hexdigest()
        if got != FINGERPRINT:
            fail("certificate %s, pinned %s" % (got, FINGERPRINT))
        if self.s.version() not in ("TLSv1.2", "TLSv1.3"):
            fail("TLS version %s" % self.s.version())
        self.user = user
        self.version = version  # 1: every line must be a version-1 line
        self.buf = b""
        self.sent = []  # the last lines sent, for messages
        self.presence = []  # (state, [names]) of every PRESENCE line seen
        self.who_tokens, self.who_at = 5.0, time.monotonic()

    def __repr__(self):
        return "%s(v%s)" % (self.user or "conn", self.version or "?")

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.sent = (self.sent + [line])[-3:]
        self.s.sendall(line + b" \r\n")

    def raw(self, data):
        self.sent = (self.sent + [data])[-3:]
        self.s.sendall(data)

    def after(self):
        return "after %s sent %r" % (self, self.sent)

    def read(self, timeout=TIMEOUT):
        """The next line, whatever it is, checked against the page's rules for
        every server line."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: nothing within %.1fs, %s (buffered %r)"
                                   % (self, timeout, self.after(), self.buf))
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                raise EOFError("%s closed, %s (buffered %r)" % (self, self.after(), self.buf))
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        raw += b"\n"
        # "Every line a server sends ends in a space and CRLF"; at most 8192 bytes.
        if not raw.endswith(b" \r\n") or len(raw) > 8192:
            fail("%s: line %r does not end in space CRLF or is too long, %s" % (self, raw, self.after()))
        try:
            text = raw[:-3].decode("utf-8")
        except UnicodeDecodeError:
            fail("%s: line %r is not UTF-8" % (self, raw))
        if CONTROL.search(text) or text.endswith((" ", "\t")) or not text:
            fail("%s: line %r has control characters or a stray space" % (self, raw))
        if self.version == 1 and (not V1_LINE.match(text) or
                                  text.startswith("RELAY ") and text.split(" ")[1] != self.user):
            fail("%s: version-1 session got a line version 1 does not have: %r, %s"
                 % (self, raw, self.after()))
        return text

    def line(self, timeout=TIMEOUT):
        """The next line that is not CHECK or PRESENCE; PRESENCE lines are kept
        in self.presence (they may come at any time to a watcher)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.read(max(0.0, deadline - time.monotonic()))
            if text == "CHECK":
                continue
            if text.startswith("PRESENCE "):
                self.presence.append(parse_presence(self, text))
                continue
            return text

    def expect(self, want, timeout=TIMEOUT, why=""):
        got = self.line(timeout)
        if got != want:
            fail("%s: got %r, want %r, %s%s" % (self, got, want, self.after(),
                                                 " (" + why + ")" if why else ""))
        return got

    def expect_end(self, want, why=""):
        """An END line, then the connection closes."""
        self.expect(want, why=why)
        self.expect_closed(why)

    def expect_closed(self, why=""):
        try:
            while True:
                got = self.read()
                if got != "CHECK":
                    fail("%s: got %r, want the connection closed, %s %s" % (self, got, self.after(), why))
        except (EOFError, ConnectionError, ssl.SSLError):
            pass
        except TimeoutError:
            fail("%s: still open, want it closed, %s %s" % (self, self.after(), why))
        self.s.close()
        Online.gone(self)

    def barrier(self):
        """Every line that comes before the answer to a message to oneself:
        what the server had for this session up to now, CHECK and PRESENCE
        aside."""
        token = "sync-%d" % next(Conn.tokens)
        self.send("MSG %s %s %s" % (self.user, self.user, token))
        lines = []
        while True:
            got = self.line()
            if got == "RELAY %s %s %s" % (self.user, self.user, token):
                return lines
            lines.append(got)

    def quiet(self, why):
        got = self.barrier()
        if got:
            fail("%s: got %r, want nothing (%s)" % (self, got, why))

    def who(self, mask):
        """WHO, keeping to "5 at once, then once a second" as a client would."""
        now = time.monotonic()
        self.who_tokens = min(5.0, self.who_tokens + (now - self.who_at))
        self.who_at = now
        if self.who_tokens < 1:
            time.sleep(1 - self.who_tokens + 0.05)
            self.who_tokens, self.who_at = 1.0, time.monotonic()
        self.who_tokens -= 1
        self.send("WHO " + mask)
        return self.line()

    def expect_who(self, mask, names, count=None, shown=None):
        got = self.who(mask)
        want = who_line(shown or mask, names, count)
        if got != want:
            fail("%s: sent %r, got %r, want %r (WHO: the count, then the names in sorted order)"
                 % (self, "WHO " + mask, got, want))

    def close(self):
        """Drop the connection without END."""
        self.s.close()
        Online.gone(self)


def who_line(mask, names, count=None):
    names = sorted(names)
    return " ".join(["WHO", mask, str(len(names) if count is None else count)] + names)


def parse_presence(conn, text):
    f = text.split(" ")
    if len(f) < 3 or f[1] not in ("on", "off") or not all(NAME_RE.match(n) for n in f[2:]):
        fail("%s: bad PRESENCE line %r" % (conn, text))
    return f[1], f[2:]


def parse_hello(conn, text):
    """HELLO <v> <features>: the version, and the features this client knows;
    the ones it does not know are skipped, as the page says."""
    f = text.split(" ")
    if len(f) < 2 or f[0] != "HELLO" or not re.fullmatch(r"[1-9][0-9]{0,2}", f[1]):
        fail("%s: want HELLO <version> <features>, got %r, %s" % (conn, text, conn.after()))
    feats = {}
    for tok in f[2:]:
        key, _, value = tok.partition("=")
        if key == "presence":
            feats[key] = int(value)
        elif key == "groups":
            g, m = value.split(",")
            feats[key] = (int(g), int(m))
        elif key == "signup":
            if value not in ("invite", "open"):
                fail("%s: signup=%r in %r" % (conn, value, text))
            feats[key] = value
        # anything else: a feature this client does not know; skipped
    return int(f[1]), feats


class Online:
    """Who this run has logged in and not yet seen leave: what WHO must show."""
    conns = {}

    @classmethod
    def came(cls, c):
        cls.conns[c.user] = c

    @classmethod
    def gone(cls, c):
        if cls.conns.get(c.user) is c:
            del cls.conns[c.user]

    @classmethod
    def names(cls, prefix=""):
        return sorted(n for n in cls.conns if n.startswith(prefix))


def hello(version="2", user=None, same_write=False):
    """HELLO then AUTH (in one write if same_write); returns the connection
    and the features."""
    c = Conn(user)
    if same_write:
        c.raw(b"HELLO %s \r\nAUTH %s pw-%s \r\n" % (version.encode(), user.encode(), user.encode()))
    else:
        c.send("HELLO " + version)
        if user:
            c.send("AUTH %s pw-%s" % (user, user))
    v, feats = parse_hello(c, c.line())
    c.version = v
    if user:
        c.expect("ACCEPT " + user)
        Online.came(c)
    return c, v, feats


def v2(user):
    c, v, _ = hello("2", user)
    if v != 2:
        fail("HELLO 2 answered version %d" % v)
    return c


def v1(user):
    c = Conn(user, version=1)
    c.send("AUTH %s pw-%s" % (user, user))
    c.expect("ACCEPT " + user)
    Online.came(c)
    return c


def protocol_error(c, line, why):
    c.send(line)
    c.expect_end("END * <incorrect protocol>", why)


def await_presence(c, state, name, since=None, within=PRESENCE_WITHIN):
    """Wait for a PRESENCE line telling name is in state; returns how long it took."""
    start = since or time.monotonic()
    seen = len(c.presence)
    while True:
        for st, names in c.presence[seen:]:
            if st == state and name in names:
                return time.monotonic() - start
        seen = len(c.presence)
        left = start + within - time.monotonic()
        if left <= 0:
            fail("%s: no PRESENCE %s %s within %.1fs (seen %r)" % (c, state, name, within, c.presence))
        try:
            got = c.line(left)
        except TimeoutError:
            continue
        fail("%s: got %r while waiting for PRESENCE %s %s" % (c, got, state, name))


def watch_answer(c, names, on, off, full=()):
    """WATCH names: PRESENCE on and/or PRESENCE off with the state now of the
    names on the line (at most one line of each), and a FAIL for each name
    over the limit."""
    del c.presence[:]
    line = "WATCH " + " ".join(names)
    c.send(line)
    rest = c.barrier()
    fails = sorted(rest)
    want_fails = sorted("FAIL WATCH %s <watch list full>" % n for n in full)
    states = {}
    for st, ns in c.presence:
        if st in states:
            fail("%s: sent %r, got two PRESENCE %s lines: %r" % (c, line, st, c.presence))
        states[st] = sorted(ns)
    want = {}
    if on:
        want["on"] = sorted(on)
    if off:
        want["off"] = sorted(off)
    if states != want or fails != want_fails:
        fail("%s: sent %r, got PRESENCE %r and %r, want PRESENCE %r and %r"
             % (c, line, states, rest, want, want_fails))
    del c.presence[:]


def join(c, group, shown, members, others=()):
    """JOIN: the sender gets JOIN then WHO of the group, the others JOIN."""
    c.send("JOIN " + group)
    c.expect("JOIN %s %s" % (shown, c.user), why="JOIN answer")
    c.expect(who_line(shown, members), why="JOIN is answered with WHO of the group, sorted")
    for o in others:
        o.expect("JOIN %s %s" % (shown, c.user), why="the other members are told the JOIN")


# ---------------------------------------------------------------------------


def hello_rows(features_want):
    section("HELLO and its answer")
    c, v, feats = hello("2")
    if v != 2:
        fail("HELLO 2 answered HELLO %d" % v)
    for key, value in features_want.items():
        if feats.get(key) != value:
            fail("HELLO 2 features %r, want %s=%r" % (feats, key, value))
    for key in ("presence", "groups"):
        if key not in features_want and key in feats:
            fail("HELLO 2 offers %s (%r), but it is switched off" % (key, feats))
    c.send("END")
    c.expect_end("END <end accepted>", "END after HELLO, before AUTH")

    for asked in ("3", "999"):
        c, v, feats2 = hello(asked)
        if v != 2 or feats2 != feats:
            fail("HELLO %s answered HELLO %d %r, want the highest version not above it, 2, "
                 "with the same features %r" % (asked, v, feats2, feats))
        c.close()

    section("HELLO 1: a version-1 session")
    c = Conn("dave")
    c.send("HELLO 1")
    c.expect("HELLO 1", why="HELLO 1 gets HELLO 1 ")
    c.version = 1
    c.send("AUTH dave pw-dave")
    c.expect("ACCEPT dave")
    c.send("MSG nobody dave anyone there")
    c.expect("CNT <user not online>", why="version 1: bare CNT")
    protocol_error(c, "WHO *", "a version-2 line in a version-1 session")

    c = Conn()
    c.send("HELLO 1")
    c.expect("HELLO 1")
    protocol_error(c, "HELLO 1", "HELLO a second time")

    section("bad HELLO")
    for bad in ("HELLO 0", "HELLO 1000", "HELLO 02", "HELLO -1", "HELLO +2", "HELLO x",
                "HELLO 2.0", "HELLO", "HELLO 2 2", "hello 2"):
        protocol_error(Conn(), bad, "a bad HELLO")
    c, _, _ = hello("2")
    protocol_error(c, "HELLO 2", "HELLO a second time")
    c, _, _ = hello("2")
    protocol_error(c, "WHO *", "only AUTH, END and HELLO before login")
    c, _, _ = hello("2")
    protocol_error(c, "JOIN #Team", "only AUTH, END and HELLO before login")

    section("HELLO and AUTH in one write, HELLO after login")
    c, _, _ = hello("2", "alice", same_write=True)
    protocol_error(c, "HELLO 2", "HELLO after login")
    c, _, _ = hello("2", "alice")
    protocol_error(c, "HELLO 1", "HELLO after login")
    c = v1("alice")
    protocol_error(c, "HELLO 2", "HELLO after login in a version-1 session")

    c, _, _ = hello("2")
    c.send("AUTH alice wrong")
    c.expect_end("END <incorrect username or password>", "failed login after HELLO")
    return feats


def presence_rows(N):
    section("named CNT, MSG in version 2")
    alice = v2("alice")
    alice.send("MSG nobody alice are you there?")
    alice.expect("CNT nobody <user not online>", why="version 2 names the CNT's target")
    alice.send("MSG bob alice bob is offline")
    alice.expect("CNT bob <user not online>")

    section("WATCH answers the state now; PRESENCE on/off; UNWATCH")
    watch_answer(alice, ["bob", "zed"], on=[], off=["bob", "zed"])
    t0 = time.monotonic()
    bob = v2("bob")
    took = await_presence(alice, "on", "bob", since=t0)
    print("   PRESENCE on bob after %.2fs" % took)
    alice.expect_who("bob", ["bob"])
    bob.send("MSG alice bob hi alice")
    alice.expect("RELAY alice bob hi alice")

    # The list holds bob and zed; two more fill it (N is 4 in this run).
    fill = ["carol", "dave", "erin", "frank", "albert", "al-x", "al.y"][:N - 2]
    watch_answer(alice, fill + ["u000"], on=[], off=fill, full=["u000"])
    watch_answer(alice, ["bob"], on=["bob"], off=[])  # already watched: no new name
    alice.send("UNWATCH zed")
    alice.quiet("UNWATCH is answered with nothing")
    watch_answer(alice, ["u000", "u001"], on=[], off=["u000"], full=["u001"])
    alice.send("UNWATCH *")
    alice.quiet("UNWATCH * is answered with nothing")
    watch_answer(alice, ["frank", "zed", "bob"], on=["bob"], off=["frank", "zed"])

    t0 = time.monotonic()
    frank = v2("frank")
    print("   PRESENCE on frank (version 2) after %.2fs" % await_presence(alice, "on", "frank", since=t0))
    t0 = time.monotonic()
    frank.send("END")
    frank.expect_end("END <end accepted>")
    print("   PRESENCE off frank (END) after %.2fs" % await_presence(alice, "off", "frank", since=t0))
    t0 = time.monotonic()
    frank = v1("frank")
    print("   PRESENCE on frank (version 1) after %.2fs" % await_presence(alice, "on", "frank", since=t0))
    t0 = time.monotonic()
    frank.close()
    print("   PRESENCE off frank (dropped) after %.2fs" % await_presence(alice, "off", "frank", since=t0))

    frank = v2("frank")
    await_presence(alice, "on", "frank")
    mark = len(alice.presence)
    frank2 = v2("frank")
    frank.expect_end("END <logged in elsewhere>")
    time.sleep(SETTLE)
    alice.barrier()
    if ("off", ["frank"]) in alice.presence[mark:] or any(
            st == "off" and "frank" in ns for st, ns in alice.presence[mark:]):
        fail("a session replaced by a new login is no change, but alice got %r" % alice.presence[mark:])

    alice.send("UNWATCH frank")
    alice.quiet("UNWATCH")
    mark = len(alice.presence)
    frank2.send("END")
    frank2.expect_end("END <end accepted>")
    frank = v2("frank")
    time.sleep(SETTLE)
    alice.barrier()
    if any("frank" in ns for _, ns in alice.presence[mark:]):
        fail("alice unwatched frank but got %r" % alice.presence[mark:])

    section("watch list handed over to a version-2 login of the same user")
    watch_answer(alice, ["frank"], on=["frank"], off=[])
    frank.send("END")
    frank.expect_end("END <end accepted>")
    await_presence(alice, "off", "frank")
    alice2 = v2("alice")
    alice.expect_end("END <logged in elsewhere>")
    t0 = time.monotonic()
    frank = v2("frank")
    await_presence(alice2, "on", "frank", since=t0)
    alice2.send("UNWATCH *")
    alice2.quiet("UNWATCH *")

    section("a line of 32 names against a list of %d" % N)
    erin = v2("erin")
    names = ["x%02d" % i for i in range(32)]
    watch_answer(erin, names, on=[], off=names[:N], full=names[N:])

    section("WHO masks, counts, sorted names")
    albert, alx, aly, alz = v2("albert"), v1("al-x"), v2("al.y"), v1("al_z")
    al = ["al-x", "al.y", "al_z", "albert", "alice"]
    alice2.expect_who("*", Online.names())
    alice2.expect_who("al*", al)
    alice2.expect_who("al*", al)
    bob.expect_who("ali*", ["alice"])
    bob.expect_who("alice*", ["alice"])
    bob.expect_who("al", [])
    bob.expect_who("al.y", ["al.y"])
    erin.expect_who("zz*", [])
    erin.expect_who("nobody", [])
    erin.expect_who("a*", al)
    for c in (albert, alx, aly, alz):
        c.send("END")
        c.expect_end("END <end accepted>")

    section("WHO: 5 at once, then once a second")
    dave = v2("dave")
    for _ in range(6):
        dave.send("WHO *")
    everyone = who_line("*", Online.names())
    for _ in range(5):
        dave.expect(everyone, why="the first 5 WHO at once are answered")
    dave.expect("FAIL WHO * <slow down>", why="the 6th WHO at once")
    time.sleep(1.1)
    dave.send("WHO dave")
    dave.expect(who_line("dave", ["dave"]), why="a second later, one more WHO")
    dave.send("WHO dave")
    dave.expect("FAIL WHO dave <slow down>", why="and only one")
    dave.who_tokens, dave.who_at = 0.0, time.monotonic()
    dave.send("MSG bob dave still here")
    bob.expect("RELAY bob dave still here", why="the session goes on after FAIL")

    section("malformed presence lines")
    for bad in ("WATCH " + " ".join("y%02d" % i for i in range(33)),
                "UNWATCH " + " ".join("y%02d" % i for i in range(33)),
                "WATCH", "UNWATCH", "WATCH b@d", "WATCH *", "WATCH #Team",
                "WHO", "WHO a*b", "WHO * bob", "WHO **"):
        protocol_error(v2("u104"), bad, "a malformed line")
    return alice2, bob, dave, erin, frank


def group_rows(G, M, alice, bob, dave, erin, frank):
    section("JOIN, case-insensitive names shown as first written")
    carol = v2("carol")
    join(alice, "#Team", "#Team", ["alice"])
    join(bob, "#team", "#Team", ["alice", "bob"], others=[alice])
    join(carol, "#TEAM", "#Team", ["alice", "bob", "carol"], others=[alice, bob])
    frank.expect_who("#Team", ["alice", "bob", "carol"])
    got = erin.who("#tEAM")
    if got not in (who_line("#tEAM", ["alice", "bob", "carol"]), who_line("#Team", ["alice", "bob", "carol"])):
        fail("WHO #tEAM got %r, want the members of #Team" % got)
    print("   WHO #tEAM is answered %r" % got)

    section("MSG #group: the other members get it, the sender does not")
    alice.send("MSG #Team alice hello all")
    bob.expect("RELAY #Team alice hello all")
    carol.expect("RELAY #Team alice hello all")
    alice.quiet("a group message is not sent back to its sender")
    bob.send("MSG #tEaM bob spaces  and\ttabs kept")
    alice.expect("RELAY #Team bob spaces  and\ttabs kept")
    carol.expect("RELAY #Team bob spaces  and\ttabs kept")
    bob.quiet("no echo")
    dave.quiet("not a member, gets nothing")

    section("JOIN again is answered again and tells nobody")
    join(alice, "#Team", "#Team", ["alice", "bob", "carol"])
    bob.quiet("JOIN of a group one is in tells nobody")
    carol.quiet("JOIN of a group one is in tells nobody")

    section("FAIL not a member")
    dave.send("MSG #Team dave let me in")
    dave.expect("FAIL MSG #Team <not a member>")
    dave.send("PART #Team")
    dave.expect("FAIL PART #Team <not a member>")
    dave.send("PART #nowhere")
    dave.expect("FAIL PART #nowhere <not a member>")
    dave.send("MSG #nowhere dave hello?")
    dave.expect("FAIL MSG #nowhere <not a member>")
    frank.expect_who("#nowhere", [])
    for c in (alice, bob, carol):
        c.quiet("a FAIL tells nobody else")

    section("PART")
    carol.send("PART #team")
    carol.expect("PART #Team carol")
    alice.expect("PART #Team carol")
    bob.expect("PART #Team carol")
    carol.send("MSG #Team carol am I still in?")
    carol.expect("FAIL MSG #Team <not a member>")
    carol.send("PART #Team")
    carol.expect("FAIL PART #Team <not a member>")
    alice.quiet("after PART, carol's lines reach nobody")
    bob.quiet("after PART, carol's lines reach nobody")

    section("group full (M=%d), too many groups (G=%d)" % (M, G))
    members = [alice, bob]
    for c in (carol, dave, frank, erin):
        if len(members) == M:
            break
        join(c, "#Team", "#Team", [m.user for m in members] + [c.user], others=members)
        members.append(c)
    outsider = next(c for c in (carol, dave, frank, erin) if c not in members)
    outsider.send("JOIN #Team")
    outsider.expect("FAIL JOIN #Team <group full>")
    for m in members:
        m.quiet("a refused JOIN tells nobody")
    join(alice, "#Team", "#Team", [m.user for m in members])  # a member of a full group
    for m in members[2:]:
        m.send("PART #Team")
        for o in members:
            o.expect("PART #Team " + m.user)
    members = [alice, bob]

    gs = ["#g%d" % i for i in range(1, G + 2)]
    for g in gs[:G]:
        join(erin, g, g, ["erin"])
    erin.send("JOIN " + gs[G])
    erin.expect("FAIL JOIN %s <too many groups>" % gs[G])
    join(erin, "#G1", "#g1", ["erin"])  # one it is in: answered again, not refused
    erin.send("PART #g1")
    erin.expect("PART #g1 erin")
    join(erin, gs[G], gs[G], ["erin"])
    erin.expect_who("#g1", [])
    join(frank, "#G1", "#G1", ["frank"])  # the last member left: #g1 was gone
    for g in gs[1:]:
        erin.send("PART " + g)
        erin.expect("PART %s erin" % g)
    frank.send("PART #G1")
    frank.expect("PART #G1 frank")

    section("a listed group (#Staff: alice, bob)")
    frank.expect_who("#Staff", [])
    carol.send("JOIN #Staff")
    carol.expect("FAIL JOIN #Staff <not allowed>")
    join(bob, "#STAFF", "#Staff", ["bob"])
    join(alice, "#staff", "#Staff", ["alice", "bob"], others=[bob])
    alice.send("PART #Staff")
    alice.expect("PART #Staff alice")
    bob.expect("PART #Staff alice")
    bob.send("PART #Staff")
    bob.expect("PART #Staff bob")
    alice.quiet("alice left #Staff before bob did")
    carol.send("JOIN #Staff")
    carol.expect("FAIL JOIN #Staff <not allowed>", why="a listed group exists while empty")

    section("every member sees a group's messages in the same order")
    join(dave, "#order", "#order", ["dave"])
    join(alice, "#order", "#order", ["alice", "dave"], others=[dave])
    join(bob, "#order", "#order", ["alice", "bob", "dave"], others=[dave, alice])
    join(carol, "#order", "#order", ["alice", "bob", "carol", "dave"], others=[dave, alice, bob])
    per = 100
    got, errors = {}, []

    def receive(c, n):
        try:
            got[c.user] = [c.line() for _ in range(n)]
        except Exception as e:  # reported below
            errors.append("%s: %s" % (c.user, e))

    def send(c):
        try:
            for i in range(per):
                c.send("MSG #order %s %s-%03d" % (c.user, c.user, i))
        except Exception as e:
            errors.append("%s sending: %s" % (c.user, e))

    threads = [threading.Thread(target=receive, args=(c, n))
               for c, n in ((alice, 2 * per), (dave, 2 * per), (bob, per), (carol, per))]
    threads += [threading.Thread(target=send, args=(c,)) for c in (bob, carol)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    if errors or any(t.is_alive() for t in threads):
        fail("group order: %r" % errors)
    ref = got["alice"]
    for who in ("bob", "carol"):
        mine = [l for l in ref if l.split(" ")[2] == who]
        if mine != ["RELAY #order %s %s-%03d" % (who, who, i) for i in range(per)]:
            fail("messages of %s to #order out of order for alice: %r" % (who, mine[:5]))
    if got["dave"] != ref:
        fail("alice and dave saw #order's messages in different orders")
    for who, other in (("bob", "carol"), ("carol", "bob")):
        if got[who] != [l for l in ref if l.split(" ")[2] == other]:
            fail("%s saw #order's messages in another order than alice" % who)
    print("   %d messages from 2 senders, same order for 4 members" % (2 * per))

    section("a session's end tells the others PART")
    dave.send("END")
    dave.expect_end("END <end accepted>")
    for c in (alice, bob, carol):
        c.expect("PART #order dave", why="dave's session ended with END")
    carol.close()
    for c in (alice, bob):
        c.expect("PART #order carol", why="carol's connection dropped")
    carol = v2("carol")
    join(carol, "#order", "#order", ["alice", "bob", "carol"], others=[alice, bob])
    protocol_error(carol, "MSG #order alice not me", "a group message with another sender")
    for c in (alice, bob):
        c.expect("PART #order carol", why="carol's session ended by a protocol error")

    section("groups handed over to a version-2 login of the same user")
    join(frank, "#order", "#order", ["alice", "bob", "frank"], others=[alice, bob])
    frank2 = v2("frank")
    frank.expect_end("END <logged in elsewhere>")
    time.sleep(SETTLE)
    alice.quiet("a session replaced by a version-2 login: nobody is told anything")
    bob.quiet("a session replaced by a version-2 login: nobody is told anything")
    frank2.quiet("the new session is not told anything either")
    bob.send("MSG #order bob still with us, frank?")
    alice.expect("RELAY #order bob still with us, frank?")
    frank2.expect("RELAY #order bob still with us, frank?")
    join(frank2, "#order", "#order", ["alice", "bob", "frank"])

    section("a version-1 login leaves the old session's groups, with PART")
    frank1 = v1("frank")
    frank2.expect_end("END <logged in elsewhere>")
    alice.expect("PART #order frank")
    bob.expect("PART #order frank")
    frank1.quiet("the version-1 session is told nothing")
    return alice, bob, frank1, erin


def version1_rows(alice, bob, erin):
    section("the version-1 guarantee next to version-2 sessions")
    watch_answer(alice, ["frank"], on=[], off=["frank"])
    t0 = time.monotonic()
    frank = v1("frank")
    await_presence(alice, "on", "frank", since=t0)
    join(erin, "#order", "#order", ["alice", "bob", "erin"], others=[alice, bob])
    erin.send("MSG #order erin frank cannot see this")
    alice.expect("RELAY #order erin frank cannot see this")
    bob.expect("RELAY #order erin frank cannot see this")
    alice.send("MSG frank alice hello version 1")
    frank.expect("RELAY frank alice hello version 1")
    frank.send("MSG alice frank hello version 2")
    alice.expect("RELAY alice frank hello version 2")
    frank.send("MSG nobody frank anyone?")
    frank.expect("CNT <user not online>", why="a session without HELLO gets the bare CNT")
    frank.send("MSG dave frank dave is gone")
    frank.expect("CNT <user not online>")
    alice.expect_who("frank", ["frank"])
    bob.send("WATCH frank alice")
    bob.barrier()
    erin.send("PART #order")
    erin.expect("PART #order erin")
    alice.expect("PART #order erin")
    bob.expect("PART #order erin")
    frank.quiet("a version-1 session sees none of this")

    section("version-2 lines in a version-1 session")
    for bad in ("WHO *", "WHO frank", "WATCH bob", "UNWATCH *", "UNWATCH bob", "JOIN #order",
                "PART #order", "MSG #order frank hi all", "HELLO 2", "HELLO 1"):
        protocol_error(v1("frank"), bad, "a version-2 line in a version-1 session")
    for bad in ("WHO *", "JOIN #order", "WATCH bob"):
        protocol_error(Conn("frank", version=1), bad, "a version-2 line before login, no HELLO")
    await_presence(alice, "off", "frank")


def many_rows():
    section("WHO shows at most 100 names")
    users = ["u%03d" % i for i in range(105)]
    conns = [v1(u) for u in users]
    asker = v2("erin")
    everyone = Online.names()
    for mask, names in (("*", everyone), ("u*", Online.names("u")), ("u1*", Online.names("u1"))):
        got = asker.who(mask).split(" ")
        count, shown = int(got[2]), got[3:]
        if got[:2] != ["WHO", mask] or count != len(names) or len(shown) != min(100, count) \
                or shown != sorted(shown) or not set(shown) <= set(names):
            fail("WHO %s got %r, want count %d and %d of the names, sorted"
                 % (mask, " ".join(got), len(names), min(100, len(names))))
        if shown != names[:100]:
            print("   NOTE: WHO %s shows other names than the first 100 in order" % mask)
    for c in conns:
        c.send("END")
    for c in conns:
        c.expect_end("END <end accepted>")


def run_full():
    N, G, M = int(ARGS[0]), int(ARGS[1]), int(ARGS[2])
    hello_rows({"presence": N, "groups": (G, M)})
    alice, bob, dave, erin, frank = presence_rows(N)
    alice, bob, frank, erin = group_rows(G, M, alice, bob, dave, erin, frank)
    frank.send("END")
    frank.expect_end("END <end accepted>")
    version1_rows(alice, bob, erin)
    many_rows()


def run_off():
    feats = hello_rows({})
    if "presence" in feats or "groups" in feats:
        fail("features %r with presence and groups off" % feats)
    section("switched-off features are answered FAIL <not enabled>")
    alice, bob = v2("alice"), v2("bob")
    for line, want in (("WHO *", "FAIL WHO * <not enabled>"),
                       ("WHO bob", "FAIL WHO bob <not enabled>"),
                       ("WATCH bob", "FAIL WATCH bob <not enabled>"),
                       ("JOIN #Team", "FAIL JOIN #Team <not enabled>"),
                       ("PART #Team", "FAIL PART #Team <not enabled>"),
                       ("MSG #Team alice hi", "FAIL MSG #Team <not enabled>")):
        alice.send(line)
        alice.expect(want)
    alice.send("MSG bob alice direct messages still work")
    bob.expect("RELAY bob alice direct messages still work")
    alice.send("MSG nobody alice hi")
    alice.expect("CNT nobody <user not online>")
    bob.quiet("nothing else")


def run_listed():
    hello_rows({"presence": int(ARGS[0]), "groups": (int(ARGS[1]), int(ARGS[2]))})
    section("only listed groups")
    alice, bob, carol = v2("alice"), v2("bob"), v2("carol")
    alice.send("JOIN #elsewhere")
    alice.expect("FAIL JOIN #elsewhere <no such group>")
    carol.send("JOIN #Staff")
    carol.expect("FAIL JOIN #Staff <not allowed>")
    join(alice, "#STAFF", "#Staff", ["alice"])
    join(bob, "#staff", "#Staff", ["alice", "bob"], others=[alice])
    join(carol, "#lobby", "#Lobby", ["carol"])
    join(alice, "#LOBBY", "#Lobby", ["alice", "carol"], others=[carol])
    alice.send("MSG #Lobby alice hi lobby")
    carol.expect("RELAY #Lobby alice hi lobby")
    bob.quiet("bob is not in #Lobby")


def main():
    start = time.monotonic()
    {"full": run_full, "off": run_off, "listed": run_listed}[MODE]()
    print("interop v2 (%s): all rows passed in %.1fs" % (MODE, time.monotonic() - start))


if __name__ == "__main__":
    try:
        main()
    except (Surprise, EOFError, TimeoutError, ConnectionError, ssl.SSLError) as e:
        print("FAIL:", e, flush=True)
        sys.exit(1)
