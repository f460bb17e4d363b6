#!/usr/bin/env python3
"""Version 2 of the messager protocol, checked from docs/protocol.md alone.

An independent client: nothing here comes from the Go code, only from the
protocol page. It runs the page's rules section by section; a section stops
at the first place where the server does not do what the page says and
prints it (the line sent, the line received, the rule), the next section
starts afresh, and the run exits non-zero if any section found one.

Usage: interop_v2.py HOST PORT FINGERPRINT MODE [ARGS]

  full N G M T  the server offers presence=N and groups=G,M, lists the
                group "#Staff,alice,bob" and gathers presence changes for T ms
  off           presence and groups are switched off
  listed N G M  only the listed groups "#Staff,alice,bob" and "#Lobby,*" exist

In every mode the server has the users alice bob carol dave erin frank
albert al-x al.y al_z u000..u104 p00..p49, each with the password pw-<name>.
FINGERPRINT is the server certificate's "sha256:<hex>".

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
from concurrent.futures import ThreadPoolExecutor

HOST, PORT, FINGERPRINT, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ARGS = sys.argv[5:]

TIMEOUT = 3.0  # for an answer that should come at once
PRESENCE_WITHIN = 1.2  # "within about a second", with room for a slow machine
# After this, a PRESENCE line that was going to come has come: three times
# the server's gathering of changes (given in ms as the last argument in
# the full mode; the page's half a second otherwise).
SETTLE = 0.5
if MODE == "full":
    SETTLE = max(0.2, 3 * int(ARGS[3]) / 1000)
SPARE = iter("p%02d" % i for i in range(50))  # users for sessions that end at once

NAME = r"[A-Za-z0-9_.-]{1,32}"
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


START = time.monotonic()


def section(title):
    print("-- %4.1fs %s" % (time.monotonic() - START, title), flush=True)


class Conn:
    """One TLS connection. Lines come back as text without the final " \\r\\n",
    after checking that the server sent exactly that ending."""

    tokens = itertools.count()
    every = []  # every connection made, to close what a section leaves open

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
        # Each line is one small record sent at once; without this, Nagle's
        # algorithm holds AUTH back until the handshake's last record is acked.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        Conn.every.append(self)

    def __repr__(self):
        return "%s(v%s)" % (self.user or "conn", self.version or "?")

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.raw(line + b" \r\n")

    def raw(self, data):
        self.sent = (self.sent + [data.rstrip(b" \r\n")])[-3:]
        self.s.settimeout(TIMEOUT)  # read() leaves a shorter one behind
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

    def expect_who(self, mask, names):
        got = self.who(mask)
        want = who_line(mask, names)
        if got != want:
            fail("%s: sent %r, got %r, want %r (WHO: the count, then the names in sorted order)"
                 % (self, "WHO " + mask, got, want))

    def close(self):
        """Drop the connection without END."""
        self.s.close()
        Online.gone(self)

    def finish(self):
        """END, skipping whatever else is still on its way."""
        self.send("END")
        while self.line() != "END <end accepted>":
            pass
        self.expect_closed()


def who_line(mask, names):
    names = sorted(names)
    return " ".join(["WHO", mask, str(len(names))] + names)


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
        try:
            if key == "presence":
                feats[key] = int(value)
            elif key == "groups":
                g, m = value.split(",")
                feats[key] = (int(g), int(m))
            elif key == "signup":
                if value not in ("invite", "open"):
                    raise ValueError(value)
                feats[key] = value
            # anything else: a feature this client does not know; skipped
        except ValueError:
            fail("%s: feature %r in %r is not as the page writes it" % (conn, tok, text))
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
    c.hello = c.line()
    v, feats = parse_hello(c, c.hello)
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


def parallel(fn, items):
    """fn on every item, a few connections at a time."""
    with ThreadPoolExecutor(4) as ex:
        return list(ex.map(fn, items))


def protocol_errors(login, lines, why):
    """Each line, in a session of its own, breaks the protocol."""
    pairs = [(line, next(SPARE)) for line in lines]
    parallel(lambda p: protocol_error(login(p[1]), p[0].format(me=p[1]), why), pairs)


def await_presence(c, state, name, since=None, within=PRESENCE_WITHIN):
    """Wait for a PRESENCE line telling name is in state; returns how long it took."""
    start = since or time.monotonic()
    seen = len(c.presence)
    while True:
        left = start + within - time.monotonic()
        try:
            got = c.read(max(0.0, left))
        except TimeoutError:
            fail("%s: no PRESENCE %s %s within %.1fs (seen %r)"
                 % (c, state, name, within, c.presence[seen:]))
        if got == "CHECK":
            continue
        if not got.startswith("PRESENCE "):
            fail("%s: got %r while waiting for PRESENCE %s %s" % (c, got, state, name))
        st, names = parse_presence(c, got)
        c.presence.append((st, names))
        if st == state and name in names:
            return time.monotonic() - start


def watch_answer(c, names, on, off, full=()):
    """WATCH names: PRESENCE on and/or PRESENCE off with the state now of the
    names on the line, and a FAIL for each name over the limit."""
    del c.presence[:]
    line = "WATCH " + " ".join(names)
    c.send(line)
    rest = c.barrier()
    fails = sorted(rest)
    want_fails = sorted("FAIL WATCH %s <watch list full>" % n for n in full)
    # A PRESENCE line for a change just before the WATCH may come as well
    # (a client may be told a state it already knows): the names of each
    # state are gathered from all the lines.
    states = {}
    for st, ns in c.presence:
        states[st] = sorted(set(states.get(st, [])) | set(ns))
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
# The sections. Each starts from nobody online (but the users a section
# says) and leaves nobody online, so that one that finds a disagreement does
# not hide the others.


def hello_rows(features_want):
    section("HELLO and its answer, features")
    c, v, feats = hello("2")
    print("   HELLO 2 is answered %r" % c.hello)
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
    protocol_error(c, "JOIN #Team", "a version-2 line in a session that said HELLO 1")
    c = Conn()
    c.send("HELLO 1")
    c.expect("HELLO 1")
    protocol_error(c, "HELLO 1", "HELLO a second time")

    section("bad HELLO, HELLO twice, version-2 lines before login")
    parallel(lambda bad: protocol_error(Conn(), bad, "a bad HELLO"),
             ("HELLO 0", "HELLO 1000", "HELLO 02", "HELLO -1", "HELLO +2", "HELLO x",
              "HELLO 2.0", "HELLO", "HELLO 2 2", "hello 2"))
    c, _, _ = hello("2")
    protocol_error(c, "HELLO 2", "HELLO a second time")
    parallel(lambda bad: protocol_error(hello("2")[0], bad, "only AUTH, END and HELLO before login"),
             ("WHO *", "WATCH bob", "JOIN #Team"))

    section("HELLO and AUTH in one write; HELLO after login")
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


def cnt_rows():
    section("named CNT; MSG between version-2 sessions")
    alice = v2("alice")
    alice.send("MSG nobody alice are you there?")
    alice.expect("CNT nobody <user not online>", why="version 2 names the CNT's target")
    alice.send("MSG bob alice bob is offline")
    alice.expect("CNT bob <user not online>")
    bob = v2("bob")
    alice.send("MSG bob alice hi  bob\t!")
    bob.expect("RELAY bob alice hi  bob\t!")


def watch_rows(N):
    section("WATCH answers the state now; watch list full (N=%d); UNWATCH" % N)
    bob = v2("bob")
    time.sleep(SETTLE)  # bob's coming online is told and done with
    alice = v2("alice")
    watch_answer(alice, ["bob", "zed"], on=["bob"], off=["zed"])
    fill = ["carol", "dave", "erin", "frank", "albert", "al-x", "al.y"][:N - 2]
    watch_answer(alice, fill + ["u000"], on=[], off=fill, full=["u000"])
    watch_answer(alice, ["bob"], on=["bob"], off=[])  # already watched: takes no room
    watch_answer(alice, ["u000"], on=[], off=[], full=["u000"])
    alice.send("UNWATCH zed")
    alice.quiet("UNWATCH is answered with nothing")
    watch_answer(alice, ["u000", "u001"], on=[], off=["u000"], full=["u001"])
    alice.send("UNWATCH *")
    alice.quiet("UNWATCH * is answered with nothing")
    names = ["x%02d" % i for i in range(31)] + ["bob"]
    watch_answer(alice, names, on=[], off=names[:N], full=names[N:])


def presence_rows():
    section("PRESENCE on/off within about a second")
    alice = v2("alice")
    watch_answer(alice, ["frank", "zed"], on=[], off=["frank", "zed"])
    for how in ("version 2", "version 1"):
        t0 = time.monotonic()
        frank = v2("frank") if how == "version 2" else v1("frank")
        print("   PRESENCE on frank (%s login) after %.2fs" % (how, await_presence(alice, "on", "frank", since=t0)))
        t0 = time.monotonic()
        if how == "version 2":
            frank.send("END")
            frank.expect_end("END <end accepted>")
        else:
            frank.close()
        print("   PRESENCE off frank (%s) after %.2fs"
              % ("END" if how == "version 2" else "connection dropped", await_presence(alice, "off", "frank", since=t0)))

    section("a session replaced by a new login is no change for presence")
    frank = v2("frank")
    await_presence(alice, "on", "frank")
    mark = len(alice.presence)
    for login in (v2, v1):
        new = login("frank")
        frank.expect_end("END <logged in elsewhere>")
        frank = new
    time.sleep(SETTLE)
    alice.barrier()
    if any(st == "off" and "frank" in ns for st, ns in alice.presence[mark:]):
        fail("frank's session was replaced, twice, and alice was told %r" % alice.presence[mark:])

    section("after UNWATCH, no PRESENCE")
    alice.send("UNWATCH frank")
    alice.quiet("UNWATCH")
    mark = len(alice.presence)
    frank.finish()
    frank = v2("frank")
    time.sleep(SETTLE)
    alice.barrier()
    if any("frank" in ns for _, ns in alice.presence[mark:]):
        fail("alice unwatched frank, then was told %r" % alice.presence[mark:])


def who_rows():
    section("WHO masks: *, prefix*, a name; counts and sorted names")
    sessions = [v2("alice"), v2("bob"), v2("albert"), v1("al-x"), v2("al.y"), v1("al_z"), v2("erin")]
    alice, bob, erin = sessions[0], sessions[1], sessions[-1]
    al = ["al-x", "al.y", "al_z", "albert", "alice"]
    alice.expect_who("*", Online.names())
    alice.expect_who("al*", al)
    alice.expect_who("a*", al)
    bob.expect_who("ali*", ["alice"])
    bob.expect_who("alice*", ["alice"])
    bob.expect_who("alice", ["alice"])
    bob.expect_who("al", [])
    erin.expect_who("al.y", ["al.y"])
    erin.expect_who("zz*", [])
    erin.expect_who("nobody", [])
    erin.expect_who("b*", ["bob"])

    section("WHO: 5 at once, then once a second")
    dave = v2("dave")
    everyone = who_line("*", Online.names())
    for _ in range(6):
        dave.send("WHO *")
    t0 = time.monotonic()
    for _ in range(5):
        dave.expect(everyone, why="the first 5 WHO at once are answered")
    dave.expect("FAIL WHO * <slow down>", why="the 6th WHO at once")
    malformed_presence_rows()  # while the second passes
    time.sleep(max(0.0, t0 + 1.1 - time.monotonic()))
    dave.send("WHO dave")
    dave.expect(who_line("dave", ["dave"]), why="a second later, one more WHO")
    dave.send("WHO dave")
    dave.expect("FAIL WHO dave <slow down>", why="and only one")
    dave.send("MSG bob dave still here")
    bob.expect("RELAY bob dave still here", why="the session goes on after FAIL")


def malformed_presence_rows():
    section("malformed WHO, WATCH, UNWATCH lines")
    protocol_errors(v2, ("WATCH " + " ".join("y%02d" % i for i in range(33)),
                         "UNWATCH " + " ".join("y%02d" % i for i in range(33)),
                         "WATCH", "UNWATCH", "WATCH b@d", "WATCH *", "WATCH #Team",
                         "WHO", "WHO a*b", "WHO * bob", "WHO **", "WHO b@d"), "a malformed line")


def group_rows(G, M):
    section("JOIN: case-insensitive names, shown as first written")
    alice, bob, carol, dave, erin, frank = (v2(u) for u in ("alice", "bob", "carol", "dave", "erin", "frank"))
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

    section("FAIL ... <not a member>")
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

    section("FAIL JOIN <group full> (M=%d), <too many groups> (G=%d)" % (M, G))
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
    while len(members) > 2:
        m = members[-1]
        m.send("PART #Team")
        for o in members:
            o.expect("PART #Team " + m.user)
        members.remove(m)

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

    # Two threads send, two others receive, at the same time; the senders
    # read theirs afterwards (a TLS connection is not used by two threads).
    threads = [threading.Thread(target=receive, args=(c, 2 * per)) for c in (alice, dave)]
    threads += [threading.Thread(target=send, args=(c,)) for c in (bob, carol)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    if not errors:
        for c in (bob, carol):
            receive(c, per)
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
    print("   %d messages from 2 senders at once, in one order for the 4 members" % (2 * per))

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

    section("malformed group lines")
    protocol_errors(v2, ("JOIN", "JOIN #", "JOIN team", "JOIN #" + "x" * 33, "JOIN #a #b", "JOIN #a!",
                         "PART", "PART team", "MSG #order {me}", "MSG #order {me}  \t", "MSG # {me} hi"),
                    "a malformed line")
    alice.quiet("nothing reached #order")


def v1_login_rows():
    section("a version-1 login leaves the old session's groups, with PART")
    alice, bob, frank = v2("alice"), v2("bob"), v2("frank")
    join(alice, "#Team", "#Team", ["alice"])
    join(bob, "#Team", "#Team", ["alice", "bob"], others=[alice])
    join(frank, "#Team", "#Team", ["alice", "bob", "frank"], others=[alice, bob])
    frank1 = v1("frank")
    frank.expect_end("END <logged in elsewhere>")
    alice.expect("PART #Team frank")
    bob.expect("PART #Team frank")
    frank1.quiet("the version-1 session is told nothing")
    bob.send("MSG #Team bob frank is gone")
    alice.expect("RELAY #Team bob frank is gone")
    frank1.quiet("the version-1 session is in no group")


def version1_rows():
    section("the version-1 guarantee next to version-2 sessions")
    me = "u050"  # not online lately: WATCH then login is plain (see watch_change_rows)
    alice, bob, erin = v2("alice"), v2("bob"), v2("erin")
    watch_answer(alice, [me], on=[], off=[me])
    t0 = time.monotonic()
    old = v1(me)
    await_presence(alice, "on", me, since=t0)
    join(alice, "#Team", "#Team", ["alice"])
    join(erin, "#Team", "#Team", ["alice", "erin"], others=[alice])
    erin.send("MSG #Team erin %s cannot see this" % me)
    alice.expect("RELAY #Team erin %s cannot see this" % me)
    alice.send("MSG %s alice hello version 1" % me)
    old.expect("RELAY %s alice hello version 1" % me)
    old.send("MSG alice %s hello version 2" % me)
    alice.expect("RELAY alice %s hello version 2" % me)
    old.send("MSG nobody %s anyone?" % me)
    old.expect("CNT <user not online>", why="a session without HELLO gets the bare CNT")
    old.send("MSG dave %s dave is offline" % me)
    old.expect("CNT <user not online>")
    alice.expect_who(me, [me])
    bob.send("WATCH %s alice" % me)
    bob.barrier()
    join(bob, "#team", "#Team", ["alice", "bob", "erin"], others=[alice, erin])
    erin.send("PART #Team")
    for c in (erin, alice, bob):
        c.expect("PART #Team erin")
    old.quiet("a version-1 session sees none of this")

    section("version-2 lines in a version-1 session")
    old.send("MSG #Team %s hi all" % me)
    old.expect_end("END * <incorrect protocol>", "MSG #group in a version-1 session")
    protocol_errors(v1, ("WHO *", "WHO alice", "WATCH bob", "UNWATCH *", "UNWATCH bob", "JOIN #Team",
                         "PART #Team", "HELLO 2", "HELLO 1"), "a version-2 line in a version-1 session")
    parallel(lambda bad: protocol_error(Conn(version=1), bad, "a version-2 line before login, no HELLO"),
             ("WHO *", "JOIN #Team", "WATCH bob", "UNWATCH *", "PART #Team"))


def many_rows():
    section("WHO shows at most 100 names")
    parallel(v1, ["u%03d" % i for i in range(105)])
    asker = v2("erin")
    for mask, names in (("*", Online.names()), ("u*", Online.names("u")), ("u1*", Online.names("u1"))):
        got = asker.who(mask).split(" ")
        count, shown = int(got[2]), got[3:]
        if got[:2] != ["WHO", mask] or count != len(names) or len(shown) != min(100, count) \
                or shown != sorted(shown) or not set(shown) <= set(names):
            fail("WHO %s got %r, want count %d and %d of the names, sorted"
                 % (mask, " ".join(got), len(names), min(100, len(names))))
        if shown != names[:100]:
            print("   NOTE: WHO %s shows other names than the first 100 in order" % mask)


def watch_change_rows():
    section("WATCH's answer, then a change within one gathering of changes")
    # The WATCH answer tells the state now; a change after it must be told
    # like any other, however soon it comes. (A user who leaves and comes
    # back may cause no line; these users change once after the answer.)
    # Six watchers, one user each, at the same time.
    back = [v1(u) for u in ("u073", "u074", "u075")]
    time.sleep(SETTLE)  # these three are online, and that is told and done with

    watchers = [next(SPARE) for _ in range(6)]

    def went(user):
        watcher = v2(watchers.pop())
        u = v1(user)
        watch_answer(watcher, [user], on=[user], off=[])
        t0 = time.monotonic()
        u.finish()
        try:
            await_presence(watcher, "off", user, since=t0)
        except Surprise:
            return ("%s logged in, a watcher sent WATCH %s and got PRESENCE on %s, %s sent END and was "
                    "closed: no PRESENCE off %s within %.1fs" % ((user,) * 5 + (PRESENCE_WITHIN,)))

    def came(u):
        watcher = v2(watchers.pop())
        u.finish()
        watch_answer(watcher, [u.user], on=[], off=[u.user])
        t0 = time.monotonic()
        v1(u.user)
        try:
            await_presence(watcher, "on", u.user, since=t0)
        except Surprise:
            return ("%s logged out, a watcher sent WATCH %s and got PRESENCE off %s, %s logged in again: "
                    "no PRESENCE on %s within %.1fs" % ((u.user,) * 5 + (PRESENCE_WITHIN,)))

    with ThreadPoolExecutor(6) as ex:
        missed = [m for m in ex.map(lambda f: f[0](f[1]), [(went, u) for u in ("u070", "u071", "u072")] +
                                    [(came, u) for u in back]) if m]
    if missed:
        fail("%d of 6 changes right after a WATCH answer were never told: %s" % (len(missed), "; ".join(missed)))


def handover_rows(N, rounds=25):
    users = ["alice", "bob", "carol"]
    section("a version-2 login takes over the watch list and the groups (%d times each for %s)"
            % (rounds, ", ".join(users)))
    erin = v2("erin")
    join(erin, "#Team", "#Team", ["erin"])

    def setup(i):
        c = v2(users[i])
        names = ["u%03d" % n for n in range(60 + 10 * i, 60 + 10 * i + N)]
        watch_answer(c, names, on=[], off=names)
        return c, names

    sessions = [setup(i) for i in range(len(users))]
    for i, (c, _) in enumerate(sessions):
        join(c, "#Team", "#Team", ["erin"] + users[:i + 1], others=[erin] + [s[0] for s in sessions[:i]])

    def replace(i):
        c, names = sessions[i]
        for k in range(rounds):
            new = v2(c.user)
            while True:  # the others' messages to #Team may come before the END
                got = c.line()
                if got == "END <logged in elsewhere>":
                    break
                if not got.startswith("RELAY #Team "):
                    fail("round %d: %s's session, about to be replaced, got %r; members' sessions replaced by "
                         "version-2 logins keep their groups and nobody is told anything" % (k, c.user, got))
            c.expect_closed()
            c = new
            c.send("WATCH z%d" % k)
            c.send("MSG #Team %s round %d" % (c.user, k))
            got = [l for l in c.barrier() if not l.startswith("RELAY #Team ")]
            if got != ["FAIL WATCH z%d <watch list full>" % k]:
                fail("round %d: a version-2 login of %s replaced the session that watched %d names and was in #Team "
                     "(with erin and the other two, whose sessions are replaced likewise at the same time); "
                     "then the new one sent WATCH z%d and MSG #Team %s round %d and got %r, PRESENCE %r; "
                     "want only FAIL WATCH z%d <watch list full>, the others' messages aside "
                     "(list and groups handed over, nobody told anything)"
                     % (k, c.user, N, k, c.user, k, got, c.presence, k))
        return c, names

    sessions = parallel(replace, range(len(users)))
    got = erin.barrier()
    want = sorted("RELAY #Team %s round %d" % (u, k) for u in users for k in range(rounds))
    if sorted(got) != want:
        fail("erin, in #Team while the others' sessions were replaced by version-2 logins, got %r, want only "
             "their %d messages (nobody is told anything)" % ([l for l in got if l not in want], len(want)))
    for c, names in sessions:
        c.barrier()  # the others' messages
        t0 = time.monotonic()
        u = v1(names[0])
        await_presence(c, "on", names[0], since=t0)
        u.finish()


def cleanup():
    """END every session still open, close the rest."""
    for c in list(Online.conns.values()):
        try:
            c.finish()
        except Exception:
            c.close()
    for c in Conn.every:
        c.s.close()
    Conn.every.clear()
    Online.conns.clear()


def run(sections):
    failed = []
    for name, fn in sections:
        try:
            fn()
        except (Surprise, EOFError, TimeoutError, ConnectionError, ssl.SSLError) as e:
            print("DISAGREEMENT (%s): %s" % (name, e), flush=True)
            failed.append(name)
            time.sleep(SETTLE)
        cleanup()
    return failed


def run_full():
    N, G, M = int(ARGS[0]), int(ARGS[1]), int(ARGS[2])
    return run([
        ("hello", lambda: hello_rows({"presence": N, "groups": (G, M)})),
        ("cnt", cnt_rows),
        ("watch", lambda: watch_rows(N)),
        ("presence", presence_rows),
        ("who", who_rows),
        ("groups", lambda: group_rows(G, M)),
        ("version-1 login", v1_login_rows),
        ("version 1", version1_rows),
        ("100 names", many_rows),
        ("watch then change", watch_change_rows),
        ("handover", lambda: handover_rows(N)),
    ])


def off_rows():
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


def run_off():
    return run([("hello", lambda: hello_rows({})), ("off", off_rows)])


def listed_rows():
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


def run_listed():
    features = {"presence": int(ARGS[0]), "groups": (int(ARGS[1]), int(ARGS[2]))}
    return run([("hello", lambda: hello_rows(features)), ("listed", listed_rows)])


def main():
    start = time.monotonic()
    failed = {"full": run_full, "off": run_off, "listed": run_listed}[MODE]()
    took = time.monotonic() - start
    if failed:
        print("interop v2 (%s): the server disagrees with the page in: %s (%.1fs)"
              % (MODE, ", ".join(failed), took))
        sys.exit(1)
    print("interop v2 (%s): all rows passed in %.1fs" % (MODE, took))


if __name__ == "__main__":
    main()
