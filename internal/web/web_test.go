package web_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/messager/messager/internal/server"
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

// wsLogin opens the WebSocket and logs in as user.
func wsLogin(t *testing.T, srv *servertest.Server, user, password string) *websocket.Conn {
	t.Helper()
	ws, _, err := wsDial(t, srv, origin(srv), web.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, "AUTH "+user+" "+password)
	expect(t, ws, "ACCEPT "+user)
	return ws
}

// TestWebSocketLongLines: lines around the frame header's length forms
// and long ones go both ways, and a burst from a line session arrives
// whole and in order.
func TestWebSocketLongLines(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	ws := wsLogin(t, srv, "alice", "pw-alice")
	bob := srv.Login(t, "bob", "pw-bob")
	// "RELAY alice bob " is 16 bytes: 109 bytes of text make a 125-byte
	// payload, the longest with a 2-byte header.
	for _, n := range []int{1, 108, 109, 110, 111, 3000} {
		text := strings.Repeat("w", n)
		send(t, ws, "MSG bob alice "+text)
		bob.Expect("RELAY bob alice " + text + " \r\n")
		bob.Send("MSG alice bob " + text + " \r\n")
		expect(t, ws, "RELAY alice bob "+text)
	}
	var burst strings.Builder
	for i := range 500 {
		fmt.Fprintf(&burst, "MSG alice bob burst %d \r\n", i)
	}
	bob.Send(burst.String())
	for i := range 500 {
		expect(t, ws, fmt.Sprintf("RELAY alice bob burst %d", i))
	}
}

// TestWebSocketPing: the server answers a ping between messages.
func TestWebSocketPing(t *testing.T) {
	srv := servertest.Start(t, testUsers)
	ws := wsLogin(t, srv, "alice", "pw-alice")
	bob := srv.Login(t, "bob", "pw-bob")
	got := make(chan string, 16)
	go func() {
		defer close(got)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			got <- string(b)
		}
	}()
	bob.Send("MSG alice bob before \r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	bob.Send("MSG alice bob after \r\n")
	for _, want := range []string{"RELAY alice bob before", "RELAY alice bob after"} {
		if l := <-got; l != want {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
}

// TestWebSocketLoginTimeout: a WebSocket that does not log in in time is
// told so and closed.
func TestWebSocketLoginTimeout(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.LoginTimeout = 300 * time.Millisecond })
	ws, _, err := wsDial(t, srv, origin(srv), web.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ws, "END <timeout>")
	expectClosed(t, ws)
}

// TestWebSocketSlowReceiver: a WebSocket that stops reading is closed as
// too slow once its queue is full; its sender is told it is gone, and
// other sessions go on.
func TestWebSocketSlowReceiver(t *testing.T) {
	srv := servertest.Start(t, testUsers, func(c *server.Config) { c.MaxQueue = 64 << 10 })
	wsLogin(t, srv, "alice", "pw-alice") // and never read again
	bob := lineV2(t, srv, "bob", "pw-bob")
	carol := srv.Login(t, "carol", "pw-carol")
	batch := strings.Repeat("MSG alice bob "+strings.Repeat("f", 1000)+" \r\n", 100)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = bob.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(bob.Conn, batch); err != nil {
				return
			}
		}
	}()
	for l := bob.Line(); l != "CNT alice <user not online> \r\n"; l = bob.Line() {
		if l != "CHECK \r\n" {
			t.Fatalf("got %q, want alice gone", servertest.Trunc(l))
		}
	}
	carol.Send("MSG bob carol still here \r\n")
	for l := bob.Line(); l != "RELAY bob carol still here \r\n"; l = bob.Line() {
		if !strings.HasPrefix(l, "CNT alice ") && l != "CHECK \r\n" {
			t.Fatalf("got %q, want carol's message", servertest.Trunc(l))
		}
	}
}

// TestWebSocketClientClose: a client's close frame ends its session.
func TestWebSocketClientClose(t *testing.T) {
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := lineV2(t, srv, "bob", "pw-bob")
	bob.Send("WATCH alice \r\n")
	bob.Expect("PRESENCE off alice \r\n")
	ws := wsLogin(t, srv, "alice", "pw-alice")
	bob.Expect("PRESENCE on alice \r\n")
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	bob.Expect("PRESENCE off alice \r\n")
}
