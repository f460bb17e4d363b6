"""A client written from the protocol page, logged in to three nodes of a
cluster at once: alice on the first, bob on the second, carol on the
third. It checks that messages cross nodes both ways, that CNT comes for
a user online nowhere, and that a second login of alice on another node
ends the first with END <logged in elsewhere>.

usage: cluster_client.py HOST:PORT,HOST:PORT,HOST:PORT PASSWORD-PREFIX
"""
import socket
import ssl
import sys
import time


def connect(addr):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test pins nothing; it checks the relay
    s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
    return s, s.makefile("rb")


def login(addr, user, prefix):
    s, f = connect(addr)
    s.sendall(("AUTH %s %s%s \r\n" % (user, prefix, user)).encode())
    expect(f, "ACCEPT %s \r\n" % user)
    return s, f


def expect(f, want):
    while True:
        line = f.readline().decode()
        if line.startswith("CHECK"):
            continue
        if line != want:
            sys.exit("want %r, got %r" % (want, line))
        return


def main():
    addrs = sys.argv[1].split(",")
    prefix = sys.argv[2]
    alice, af = login(addrs[0], "alice", prefix)
    bob, bf = login(addrs[1], "bob", prefix)
    carol, cf = login(addrs[2], "carol", prefix)
    time.sleep(0.5)  # the other nodes learn of the logins
    alice.sendall(b"MSG bob alice hello from node one \r\n")
    expect(bf, "RELAY bob alice hello from node one \r\n")
    carol.sendall(b"MSG alice carol and from node three \r\n")
    expect(af, "RELAY alice carol and from node three \r\n")
    bob.sendall(b"MSG dave bob anyone \r\n")
    expect(bf, "CNT <user not online> \r\n")
    alice2, af2 = login(addrs[1], "alice", prefix)
    expect(af, "END <logged in elsewhere> \r\n")
    time.sleep(0.5)
    bob.sendall(b"MSG alice bob found you \r\n")
    expect(af2, "RELAY alice bob found you \r\n")
    print("ok")


main()
