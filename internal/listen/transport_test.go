package listen

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/messager/messager/internal/certs"
)

// TestReadFailsAfterClose: the TLS transport's Read fails at once after
// Close, also a Read blocked when Close is called, and Close does not
// wait for a Write blocked on a peer that stopped reading.
func TestReadFailsAfterClose(t *testing.T) {
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverSide := make(chan *Transport, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(raw, TLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
		if tc.Handshake() == nil {
			serverSide <- &Transport{Conn: tc, raw: raw}
		}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) // the test made the certificate itself
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := <-serverSide

	readDone := make(chan error, 1)
	go func() {
		_, err := tr.Read(make([]byte, 10))
		readDone <- err
	}()
	writeDone := make(chan error, 1)
	go func() {
		big := make([]byte, 64<<20) // far more than the socket buffers hold
		_, err := tr.Write(big)
		writeDone <- err
	}()
	time.Sleep(100 * time.Millisecond) // both are blocked now
	start := time.Now()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan error{"blocked read": readDone, "blocked write": writeDone} {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("%s succeeded after Close", name)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s still blocked a second after Close", name)
		}
	}
	if _, err := tr.Read(make([]byte, 10)); err == nil {
		t.Error("a read after Close succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close and the failed reads took %v", d)
	}
}
