package web_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/web"
)

var testUsers = servertest.Users{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}

// httpClient talks HTTPS to the test server as a browser does (ALPN
// http/1.1).
func httpClient(srv *servertest.Server) *http.Client {
	cfg := srv.ClientTLS()
	cfg.NextProtos = []string{"http/1.1"}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
}

// wsDial opens the WebSocket as a page of the server would.
func wsDial(t *testing.T, srv *servertest.Server, origin string, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, "wss://"+srv.Addr+"/ws", &websocket.DialOptions{
		HTTPClient: httpClient(srv), HTTPHeader: h, Subprotocols: subprotocols,
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func send(t *testing.T, c *websocket.Conn, lines ...string) {
	t.Helper()
	for _, l := range lines {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Write(ctx, websocket.MessageText, []byte(l))
		cancel()
		if err != nil {
			t.Fatalf("write %q: %v", l, err)
		}
	}
}

func expect(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read: %v, want %q", err, want)
		}
		if typ != websocket.MessageText {
			t.Fatalf("a binary frame, want %q", want)
		}
		if string(b) == "CHECK" && want != "CHECK" {
			continue
		}
		if string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
		return
	}
}

func expectClosed(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, b, err := c.Read(ctx); err == nil {
		t.Fatalf("got %q, want the WebSocket closed", b)
	} else if ctx.Err() != nil {
		t.Fatal("the WebSocket is still open")
	}
}

func origin(srv *servertest.Server) string { return "https://" + srv.Addr }

// TestPage: a browser's connection (ALPN http/1.1) gets the page, with
// the security headers, and /info the certificate's fingerprint.
func TestPage(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	resp, err := httpClient(srv).Get("https://" + srv.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("GET /: %s %q", resp.Status, body)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := resp.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q lets the page be framed", resp.Header.Get("Content-Security-Policy"))
	}
	resp, err = httpClient(srv).Get("https://" + srv.Addr + "/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), srv.Fingerprint) {
		t.Fatalf("/info %q does not show the fingerprint %s", body, srv.Fingerprint)
	}
}

// TestWebSocketSession: a WebSocket session is a session like any other:
// it logs in, says HELLO, and messages a TLS session both ways.
func TestWebSocketSession(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	ws, _, err := wsDial(t, srv, origin(srv), web.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, "HELLO 2", "AUTH alice pw-alice")
	expect(t, ws, "HELLO 2 presence=100 groups=20,500")
	expect(t, ws, "ACCEPT alice")
	bob := srv.Login(t, "bob", "pw-bob")
	send(t, ws, "MSG bob alice hello from a browser", "MSG carol alice anyone?")
	bob.Expect("RELAY bob alice hello from a browser \r\n")
	expect(t, ws, "CNT carol <user not online>")
	bob.Send("MSG alice bob hi browser \r\nMSG alice bob two \r\n")
	expect(t, ws, "RELAY alice bob hi browser")
	expect(t, ws, "RELAY alice bob two")
	send(t, ws, "END")
	expect(t, ws, "END <end accepted>")
	expectClosed(t, ws)
}

// TestWebSocketBadFrames: a binary frame, a frame holding a line end and
// a frame over the line limit each end the session with END *.
func TestWebSocketBadFrames(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	for _, tc := range []struct {
		name string
		send func(*websocket.Conn) error
		want string
	}{
		{"binary", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageBinary, []byte("MSG bob alice hi"))
		}, "END * <incorrect protocol>"},
		{"line end", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageText, []byte("MSG bob alice hi\nMSG bob alice two"))
		}, "END * <incorrect protocol>"},
		{"too long", func(c *websocket.Conn) error {
			return c.Write(context.Background(), websocket.MessageText, []byte("MSG bob alice "+strings.Repeat("x", 5000)))
		}, "END * <line too long>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := wsDial(t, srv, origin(srv), web.Subprotocol)
			if err != nil {
				t.Fatal(err)
			}
			send(t, ws, "AUTH alice pw-alice")
			expect(t, ws, "ACCEPT alice")
			if err := tc.send(ws); err != nil {
				t.Fatal(err)
			}
			expect(t, ws, tc.want)
			expectClosed(t, ws)
		})
	}
}

// TestWebSocketOrigin: a page from another site cannot open the
// WebSocket; nor can a client that does not ask for the subprotocol.
func TestWebSocketOrigin(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	_, resp, err := wsDial(t, srv, "https://evil.example", web.Subprotocol)
	if err == nil {
		t.Fatal("a foreign origin opened the WebSocket")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %v; want 403", resp, err)
	}
	ws, _, err := wsDial(t, srv, origin(srv))
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ws)
	if got := websocket.CloseStatus(readErr(ws)); got != websocket.StatusPolicyViolation && got != -1 {
		t.Errorf("close status %v, want policy violation", got)
	}
}

func readErr(c *websocket.Conn) error {
	_, _, err := c.Read(context.Background())
	return err
}

// TestLineClientsUnaffected: a connection that sends no ALPN speaks the
// line protocol, with the web side on.
func TestLineClientsUnaffected(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	cfg := srv.ClientTLS()
	cfg.NextProtos = nil
	c, err := tls.Dial("tcp", srv.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn := servertest.NewConn(t, c)
	conn.Send("AUTH alice pw-alice \r\n")
	conn.Expect("ACCEPT alice \r\n")
}
