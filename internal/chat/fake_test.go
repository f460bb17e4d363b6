package chat_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
)

// fakeServer is a TLS listener on 127.0.0.1 that runs handle for every
// connection it accepts, with a fresh self-signed certificate. It stands in
// for servers that misbehave in ways the real one never does. Like a
// version-1 server, it answers HELLO with END * <incorrect protocol> and
// closes; handle sees connections that start otherwise. It returns the
// address and the certificate's fingerprint.
func fakeServer(t *testing.T, handle func(c net.Conn, r *bufio.Reader)) (addr, fingerprint string) {
	t.Helper()
	return fakeServerHello(t, "END * <incorrect protocol> \r\n", handle)
}

// fakeServerHello is fakeServer with hello as its answer to HELLO. An
// answer that is not an END goes on to handle, which reads the AUTH.
func fakeServerHello(t *testing.T, hello string, handle func(c net.Conn, r *bufio.Reader)) (addr, fingerprint string) {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				if first, err := r.Peek(len("HELLO")); err != nil {
					return
				} else if string(first) == "HELLO" {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					io.WriteString(c, hello)
					if strings.HasPrefix(hello, "END") {
						return
					}
				}
				handle(c, r)
			}()
		}
	}()
	return ln.Addr().String(), certs.Fingerprint(cert.Certificate[0])
}
