package web_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/messager/messager/internal/server/servertest"
)

// The browser tests drive Debian's Chromium, headless. They skip when it
// is not installed, unless MESSAGER_REQUIRE_BROWSER=1 (as in CI), which
// makes a missing browser a failure.
const chromiumPath = "/usr/bin/chromium"

// step bounds one action in the page, and wait the time the page has to
// show something that comes over the network.
const (
	step = 10 * time.Second
	wait = 8 * time.Second
)

func findChromium(t *testing.T) string {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else {
			if os.Getenv("MESSAGER_REQUIRE_BROWSER") == "1" {
				t.Fatalf("chromium is not installed (%s), and MESSAGER_REQUIRE_BROWSER=1 needs it", chromiumPath)
			}
			t.Skipf("chromium is not installed (%s); set MESSAGER_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
		}
	}
	return path
}

// spkiHash is what --ignore-certificate-errors-spki-list takes: the
// base64 SHA-256 of the certificate's public key, so the browser trusts
// this one self-signed certificate and nothing else.
func spkiHash(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block in the server's certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// browser is one headless Chromium that trusts the test server's
// certificate.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string // https://host:port of the server
}

// startBrowser starts Chromium for srv; extra SPKI hashes are trusted too.
// chromedp gives it a new empty profile directory and removes it after.
func startBrowser(t *testing.T, srv *servertest.Server, extraSPKI ...string) *browser {
	t.Helper()
	path := findChromium(t)
	spki := append([]string{spkiHash(t, srv.CertPEM)}, extraSPKI...)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 800),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		bcancel()
		acancel()
	})
	return &browser{t: t, ctx: bctx, base: "https://" + srv.Addr}
}

// page is one tab in a browser context of its own (its own storage), so
// two pages are two people.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string

	mu         sync.Mutex
	exceptions []string
}

// cspRecorder runs before the page's own scripts and keeps every Content
// Security Policy violation, so a test can prove nothing was blocked (the
// page breaks no rule of its own policy) and nothing inline ran.
const cspRecorder = `
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});`

// newPage opens the server's page in a new tab of its own.
func (b *browser) newPage(t *testing.T, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &page{t: t, ctx: ctx, name: name}
	t.Cleanup(func() {
		p.checkClean()
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := e.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			p.mu.Lock()
			p.exceptions = append(p.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, text))
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder}); err != nil {
		t.Fatal(err)
	}
	p.do("open the page", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	p.waitFor("the fingerprint from /info", `document.getElementById("login-fingerprint").textContent.length > 60`)
	return p
}

// checkClean fails the test if the page threw or broke its CSP.
func (p *page) checkClean() {
	p.t.Helper()
	p.mu.Lock()
	exc := p.exceptions
	p.mu.Unlock()
	for _, e := range exc {
		p.t.Errorf("%s: uncaught exception: %s", p.name, e)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp || []`))
	if err == nil && len(csp) > 0 {
		p.t.Errorf("%s: content security policy violations: %q", p.name, csp)
	}
}

// do runs actions under one step's deadline.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// eval runs a JavaScript expression and decodes its value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, expr, err)
	}
	return v
}

// evalAsync runs an expression whose value is a promise, and decodes
// what the promise resolves to.
func evalAsync[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor waits until the expression is truthy.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\npage text:\n%s", p.name, what, err, p.text())
	}
}

// text is what the page shows, for failure messages.
func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// login signs in through the form and waits for the chat.
func (p *page) login(user, password string) {
	p.t.Helper()
	p.do("fill in the login form",
		chromedp.SetValue(chromedp.CSS("#login-user"), user),
		chromedp.SetValue(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	p.waitFor("the chat", `!document.getElementById("chat").hidden && document.getElementById("conn").dataset.state === "online"`)
}

// open types a name (or #group) into the field that opens a conversation.
func (p *page) open(name string) {
	p.t.Helper()
	p.do("open "+name,
		chromedp.SetValue(chromedp.CSS("#open-input"), name),
		chromedp.SendKeys(chromedp.CSS("#open-input"), kb.Enter),
	)
	p.waitFor("the conversation with "+name, fmt.Sprintf(`!document.getElementById("conversation").hidden && document.getElementById("conv-name").textContent.toLowerCase() === %s`, js(strings.ToLower(name))))
}

// say types text into the message field and presses Enter.
func (p *page) say(text string) {
	p.t.Helper()
	p.do("send "+text,
		chromedp.SetValue(chromedp.CSS("#input"), text),
		chromedp.Focus(chromedp.CSS("#input")),
	)
	p.enter()
	p.waitFor("the field to empty", `document.getElementById("input").value === ""`)
}

// enter presses Enter in the focused element as a keyboard does: one key
// down that carries the text, so that a handler that prevents the default
// also prevents the new line. (chromedp.SendKeys sends the text as an
// event of its own, which a textarea takes as a new line regardless.)
func (p *page) enter() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
	up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
	for _, ev := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, ev); err != nil {
			p.t.Fatalf("%s: press Enter: %v", p.name, err)
		}
	}
}

// waitMessage waits until the open conversation shows a message from
// sender with exactly this text.
func (p *page) waitMessage(sender, text string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s: %q", sender, text), fmt.Sprintf(
		`[...document.querySelectorAll("#messages li.msg")].some((li) => li.dataset.from === %s && li.querySelector(".text").textContent === %s)`,
		js(sender), js(text)))
}

// shown is one message as the page shows it.
type shown struct {
	From   string `json:"from"`
	Text   string `json:"text"`
	Status string `json:"status"`
}

// messages returns the messages of the open conversation.
func (p *page) messages() []shown {
	p.t.Helper()
	return eval[[]shown](p, `[...document.querySelectorAll("#messages li.msg")].map((li) => ({
		from: li.dataset.from,
		text: li.querySelector(".text").textContent,
		status: li.querySelector(".status") ? li.querySelector(".status").textContent : "",
	}))`)
}

// convItem is the selector of a conversation's entry in the list.
func convItem(key string) string {
	return fmt.Sprintf(`#conv-list [data-key=%s]`, js(key))
}

// artifacts is where screenshots go: MESSAGER_ARTIFACTS if set, else a
// directory of the test's own.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("MESSAGER_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// screenshot saves the page's viewport as name.png.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	// Let transitions end and focus rings settle.
	time.Sleep(150 * time.Millisecond)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	file := filepath.Join(artifacts(p.t), name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", file)
}

// colorScheme makes the page see prefers-color-scheme as dark or light.
func (p *page) colorScheme(scheme string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		p.t.Fatal(err)
	}
}

// lineV2 logs in a line-protocol session that speaks version 2.
func lineV2(t *testing.T, srv *servertest.Server, user, password string) *servertest.Conn {
	t.Helper()
	c := srv.DialConn(t)
	c.Send("HELLO 2 \r\nAUTH " + user + " " + password + " \r\n")
	if l := c.Line(); !strings.HasPrefix(l, "HELLO 2 ") {
		t.Fatalf("%s: got %q, want HELLO 2", user, l)
	}
	c.Expect("ACCEPT " + user + " \r\n")
	return c
}
