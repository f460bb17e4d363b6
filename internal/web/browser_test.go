package web_test

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
)

// The end-to-end tests of the web client: the page in headless Chromium,
// against a real server, with line-protocol sessions (what the terminal
// client speaks) and other pages on the other end.

// fastPresence tells presence changes every 50 ms rather than every half
// second, so that the tests wait less.
func fastPresence(c *server.Config) { c.PresenceInterval = 50 * time.Millisecond }

// person is a JavaScript test of the people list: name shown with state
// "is-on" or "is-off".
func person(name, state string) string {
	return fmt.Sprintf(`(() => { const b = document.querySelector('#people-list [data-name=%s]'); return b && b.classList.contains(%s); })()`, js(name), js(state))
}

// TestBrowserLoginLogout: a wrong password is refused at the form; the
// right one opens the chat and others see the user online; signing out
// ends the session, and the user name (never the password) is remembered.
func TestBrowserLoginLogout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.screenshot("login")

	bob := lineV2(t, srv, "bob", "pw-bob")
	bob.Send("WATCH alice \r\n")
	bob.Expect("PRESENCE off alice \r\n")

	p.do("log in with a wrong password",
		chromedp.SetValue(chromedp.CSS("#login-user"), "alice"),
		chromedp.SetValue(chromedp.CSS("#login-password"), "wrong"),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
	p.waitFor("the login error", `!document.getElementById("login-error").hidden && document.getElementById("login-error").textContent.includes("Incorrect")`)
	if !eval[bool](p, `document.getElementById("chat").hidden`) {
		t.Fatal("a wrong password opened the chat")
	}

	p.login("alice", "pw-alice")
	bob.Expect("PRESENCE on alice \r\n")
	if got := eval[string](p, `document.getElementById("me-name").textContent`); got != "alice" {
		t.Errorf("signed in as %q, want alice", got)
	}
	stored := eval[string](p, `JSON.stringify([localStorage, sessionStorage, document.cookie])`)
	if !strings.Contains(stored, `"alice"`) || strings.Contains(stored, "pw-alice") {
		t.Errorf("the page stored %s: want the user name and never the password", stored)
	}

	p.do("sign out", chromedp.Click(chromedp.CSS("#logout")))
	p.waitFor("the login form", `!document.getElementById("login").hidden && document.getElementById("chat").hidden`)
	bob.Expect("PRESENCE off alice \r\n")
	if got := eval[string](p, `document.getElementById("login-user").value + "|" + document.getElementById("login-password").value`); got != "alice|" {
		t.Errorf("after signing out the form holds %q, want the user name and no password", got)
	}
	p.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	if got := eval[string](p, `document.getElementById("login-user").value`); got != "alice" {
		t.Errorf("after a reload the user name is %q, want alice", got)
	}
}

// TestBrowserPresence: people using the line protocol (the terminal
// client) show up online, go offline and come back, live.
func TestBrowserPresence(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := srv.Login(t, "bob", "pw-bob")
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.login("alice", "pw-alice")
	p.waitFor("bob online", person("bob", "is-on"))

	bob.Send("END \r\n")
	bob.Expect("END <end accepted> \r\n")
	p.waitFor("bob offline", person("bob", "is-off"))

	srv.Login(t, "bob", "pw-bob")
	p.waitFor("bob online again", person("bob", "is-on"))

	// carol was never seen: the page learns of her from its next WHO.
	srv.Login(t, "carol", "pw-carol")
	p.do("refresh who is online", chromedp.Click(chromedp.CSS("#who-refresh")))
	p.waitFor("carol online", person("carol", "is-on"))
	if got := eval[string](p, `document.getElementById("people-count").textContent`); got != "2 online" {
		t.Errorf("people count %q, want 2 online", got)
	}
}

// TestBrowserDirectMessages: the page and a line-protocol session message
// each other; the field keeps what is being typed while messages arrive;
// unread counts show on the conversations not open.
func TestBrowserDirectMessages(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := srv.Login(t, "bob", "pw-bob")
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.login("alice", "pw-alice")
	p.waitFor("bob online", person("bob", "is-on"))
	p.do("open bob from the people list", chromedp.Click(chromedp.CSS(`#people-list [data-name="bob"]`)))
	p.waitFor("the conversation", `document.getElementById("conv-name").textContent === "bob" && document.activeElement.id === "input"`)

	p.say("hello bob")
	bob.Expect("RELAY bob alice hello bob \r\n")
	p.say("two lines\nat once")
	bob.Expect("RELAY bob alice two lines \r\n")
	bob.Expect("RELAY bob alice at once \r\n")

	bob.Send("MSG alice bob hi alice, good to see you here \r\nMSG alice bob did the build pass? \r\n")
	p.waitMessage("bob", "did the build pass?")

	p.do("type without sending", chromedp.SendKeys(chromedp.CSS("#input"), "yes, all green and"))
	bob.Send("MSG alice bob great \r\n")
	p.waitMessage("bob", "great")
	if got := eval[string](p, `document.activeElement.id + "|" + document.getElementById("input").value`); got != "input|yes, all green and" {
		t.Errorf("after a message arrived the field is %q, want it focused and unchanged", got)
	}
	p.do("finish typing", chromedp.SendKeys(chromedp.CSS("#input"), " merged"))
	p.enter()
	bob.Expect("RELAY bob alice yes, all green and merged \r\n")

	got := p.messages()
	want := []shown{
		{"alice", "hello bob", ""}, {"alice", "two lines", ""}, {"alice", "at once", ""},
		{"bob", "hi alice, good to see you here", ""}, {"bob", "did the build pass?", ""}, {"bob", "great", ""},
		{"alice", "yes, all green and merged", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages:\n%v\nwant\n%v", got, want)
	}
	if n := eval[int](p, `[...document.querySelectorAll("#messages li.msg")].filter((li) => li.querySelector(".meta time[datetime]")).length`); n != len(want) {
		t.Errorf("%d messages show their time, want %d", n, len(want))
	}
	colours := eval[map[string][]string](p, `(() => {
		const m = {};
		for (const e of document.querySelectorAll("#messages .from")) (m[e.textContent] ||= []).push(e.className);
		return m;
	})()`)
	for name, cs := range colours {
		for _, c := range cs {
			if c != cs[0] || !strings.Contains(c, "hue-") {
				t.Errorf("%s is shown in colours %q, want one", name, cs)
				break
			}
		}
	}
	p.screenshot("chat")

	// Another conversation is open: bob's messages count as unread.
	p.open("carol")
	bob.Send("MSG alice bob ping \r\nMSG alice bob ping again \r\n")
	p.waitFor("two unread", fmt.Sprintf(`(document.querySelector(%s + " .badge") || {}).textContent === "2"`, js(convItem("bob"))))
	if title := eval[string](p, `document.title`); !strings.HasPrefix(title, "(2)") {
		t.Errorf("title %q, want the unread count", title)
	}
	p.do("back to bob", chromedp.Click(chromedp.CSS(convItem("bob"))))
	p.waitMessage("bob", "ping again")
	p.waitFor("no unread", fmt.Sprintf(`!document.querySelector(%s + " .badge") && !document.title.startsWith("(")`, js(convItem("bob"))))

	// Alt+Up and Alt+Down move between conversations.
	p.do("Alt+Down", chromedp.KeyEvent(kb.ArrowDown, chromedp.KeyModifiers(chromedp.ModifierAlt)))
	p.waitFor("carol's conversation", `document.getElementById("conv-name").textContent === "carol"`)
}

// TestBrowserTwoPages: two people, each in a browser page of their own.
func TestBrowserTwoPages(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	b := startBrowser(t, srv)
	alice := b.newPage(t, "alice")
	bob := b.newPage(t, "bob")
	alice.login("alice", "pw-alice")
	bob.login("bob", "pw-bob")

	alice.open("bob")
	alice.waitFor("bob online in the header", `document.getElementById("conv-sub").textContent === "Online"`)
	alice.say("hi from alice's browser")
	bob.waitFor("a conversation with one unread", fmt.Sprintf(`(document.querySelector(%s + " .badge") || {}).textContent === "1"`, js(convItem("alice"))))
	bob.do("open it", chromedp.Click(chromedp.CSS(convItem("alice"))))
	bob.waitMessage("alice", "hi from alice's browser")
	bob.say("and hello from bob's")
	alice.waitMessage("bob", "and hello from bob's")

	// A name has the same colour on every page.
	colour := `document.querySelector('#messages li.msg[data-from="alice"] .from').className`
	if a, b := eval[string](alice, colour), eval[string](bob, colour); a != b {
		t.Errorf("alice is %q on her page and %q on bob's", a, b)
	}
}

// TestBrowserGroup: a group with two pages and a line session in it;
// joins, messages both ways, a member leaving, and a FAIL shown.
func TestBrowserGroup(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence, func(c *server.Config) { c.MaxGroups = 2 })
	b := startBrowser(t, srv)
	alice := b.newPage(t, "alice")
	carol := b.newPage(t, "carol")
	alice.login("alice", "pw-alice")
	alice.open("#team")
	alice.waitFor("joined", `document.getElementById("conv-sub").textContent === "1 member"`)

	bob := lineV2(t, srv, "bob", "pw-bob")
	bob.Send("JOIN #team \r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Expect("WHO #team 2 alice bob \r\n")
	alice.waitFor("bob joined", `[...document.querySelectorAll("#messages .event")].some((e) => e.textContent.startsWith("bob joined."))`)

	carol.login("carol", "pw-carol")
	carol.open("#TEAM") // groups ignore case, and keep the spelling they were made with
	bob.Expect("JOIN #team carol \r\n")
	carol.waitFor("the group's own spelling", `document.getElementById("conv-name").textContent === "#team" && document.getElementById("conv-sub").textContent === "3 members"`)
	alice.waitFor("three members", `document.getElementById("conv-sub").textContent === "3 members"`)

	alice.say("hello team")
	bob.Expect("RELAY #team alice hello team \r\n")
	carol.waitMessage("alice", "hello team")
	bob.Send("MSG #team bob hi both, the release is out \r\n")
	alice.waitMessage("bob", "hi both, the release is out")
	carol.waitMessage("bob", "hi both, the release is out")
	carol.say("nice work!")
	bob.Expect("RELAY #team carol nice work! \r\n")
	alice.waitMessage("carol", "nice work!")
	bob.Send("MSG #team bob notes are in the wiki \r\n")
	alice.waitMessage("bob", "notes are in the wiki")
	if got := alice.messages(); len(got) != 4 || got[0].From != "alice" {
		t.Errorf("alice's page shows %v", got)
	}
	alice.do("show the members", chromedp.Click(chromedp.CSS("#members summary")))
	alice.waitFor("the member list", `document.querySelectorAll("#member-list li").length === 3`)
	alice.screenshot("group")
	alice.do("hide the members", chromedp.Click(chromedp.CSS("#members summary")))

	carol.do("leave", chromedp.Click(chromedp.CSS("#leave")))
	bob.Expect("PART #team carol \r\n")
	alice.waitFor("carol left", `[...document.querySelectorAll("#messages .event")].some((e) => e.textContent.startsWith("carol left."))`)
	carol.waitFor("carol out of the group", `!document.getElementById("rejoin").hidden && document.getElementById("send").disabled`)

	// The server allows two groups a user: the third JOIN is answered
	// FAIL, which the page shows where it happened and as an alert.
	alice.open("#ops")
	alice.waitFor("joined #ops", `document.getElementById("conv-sub").textContent === "1 member"`)
	alice.open("#more")
	alice.waitFor("the FAIL inline", `[...document.querySelectorAll("#messages .event.error")].some((e) => e.textContent.includes("Could not join #more: too many groups."))`)
	alice.waitFor("the FAIL alert", `[...document.querySelectorAll("#toasts .toast")].some((e) => e.textContent.includes("too many groups"))`)
	if !eval[bool](alice, `!document.getElementById("rejoin").hidden`) {
		t.Error("after a refused JOIN the page does not offer to join again")
	}
}

// TestBrowserNotOnline: a CNT names its target, and the page marks the
// most recent message to that target, not the last message sent.
func TestBrowserNotOnline(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := srv.Login(t, "bob", "pw-bob")
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.login("alice", "pw-alice")

	// Both messages leave in one go, so carol's CNT comes back after the
	// message to bob was sent.
	eval[bool](p, `(() => {
		const open = (n) => { const i = document.getElementById("open-input"); i.value = n; i.form.requestSubmit(); };
		const say = (t) => { const i = document.getElementById("input"); i.value = t; i.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true })); };
		open("carol"); say("are you there?");
		open("bob"); say("hi bob");
		return true;
	})()`)
	bob.Expect("RELAY bob alice hi bob \r\n")
	p.do("open carol", chromedp.Click(chromedp.CSS(convItem("carol"))))
	p.waitFor("the mark", `(document.querySelector("#messages li.msg .status") || {}).textContent === "carol is not online. Not delivered."`)
	p.waitFor("carol offline", fmt.Sprintf(`document.querySelector(%s).getAttribute("aria-label").includes("offline")`, js(convItem("carol"))))
	p.screenshot("not-online")
	p.do("open bob", chromedp.Click(chromedp.CSS(convItem("bob"))))
	p.waitMessage("alice", "hi bob")
	if got := p.messages(); len(got) != 1 || got[0].Status != "" {
		t.Errorf("bob's conversation shows %v; the message to bob was delivered", got)
	}
}

// TestBrowserHostileText: whatever comes over the wire is shown as text;
// no markup is made of it and no script runs; direction controls are
// shown as marks; the page never sends what would break the protocol.
func TestBrowserHostileText(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := srv.Login(t, "bob", "pw-bob")
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.login("alice", "pw-alice")
	p.open("bob")

	for _, tc := range []struct{ sent, shown string }{
		{`<img src=x onerror="window.__pwned=1">`, `<img src=x onerror="window.__pwned=1">`},
		{`<script>window.__pwned=2</script>`, `<script>window.__pwned=2</script>`},
		{`<b>bold</b> &lt;i&gt; &amp; <!-- x -->`, `<b>bold</b> &lt;i&gt; &amp; <!-- x -->`},
		{`\x1b[31mred\x1b[0m ^[[2J \u001b]0;title\a`, `\x1b[31mred\x1b[0m ^[[2J \u001b]0;title\a`},
		{"invoice\u202Efdp.exe and \u2066isolate\u2069", "invoiceU+202Efdp.exe and U+2066isolateU+2069"},
		{`javascript:window.__pwned=3 https://example.org/a?b=1&c=<svg onload=alert(1)>`, `javascript:window.__pwned=3 https://example.org/a?b=1&c=<svg onload=alert(1)>`},
	} {
		bob.Send("MSG alice bob " + tc.sent + " \r\n")
		p.waitMessage("bob", tc.shown)
		// The conversation's preview is text too, direction controls spelled out.
		p.waitFor("the preview", fmt.Sprintf(`document.querySelector(%s + " .conv-preview").textContent === %s`, js(convItem("bob")), js("bob: "+tc.shown)))
	}
	if got := eval[string](p, `typeof window.__pwned`); got != "undefined" {
		t.Errorf("a script ran: window.__pwned is %s", got)
	}
	if n := eval[int](p, `document.images.length + document.querySelectorAll("#messages script, #messages b, #messages svg:not(.icon), [onerror], [onload]").length`); n != 0 {
		t.Errorf("%d elements were made from message text", n)
	}
	links := eval[[]string](p, `[...document.querySelectorAll("#messages a")].map((a) => a.protocol + " " + a.rel + " " + a.textContent)`)
	if len(links) != 1 || links[0] != "https: noopener noreferrer https://example.org/a?b=1&c=" {
		t.Errorf("links %q, want only the https address, opened without a referrer", links)
	}

	// What the page sends: markup as it is, and no control characters
	// (an ESC would end the session with END *).
	p.say(`<img src=x onerror="window.__pwned=4">`)
	bob.Expect(`RELAY bob alice <img src=x onerror="window.__pwned=4"> ` + "\r\n")
	p.say("a\x1b[31mb\x07c\u202Ed")
	bob.Expect("RELAY bob alice a[31mbc\u202Ed \r\n")
	p.waitMessage("alice", "a[31mbcU+202Ed")
	p.screenshot("hostile")
}

// TestBrowserReconnect: after a server restart the page logs back in by
// itself, joins its groups again and watches its people again.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	b := startBrowser(t, srv)
	p := b.newPage(t, "alice")
	p.login("alice", "pw-alice")
	p.open("#team")
	bob := lineV2(t, srv, "bob", "pw-bob")
	bob.Send("JOIN #team \r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Expect("WHO #team 2 alice bob \r\n")
	p.waitFor("two members", `document.getElementById("conv-sub").textContent === "2 members"`)
	p.do("refresh who is online", chromedp.Click(chromedp.CSS("#who-refresh")))
	p.waitFor("bob online", person("bob", "is-on"))

	// While the server is down the page says so, and keeps trying.
	srv.Stop()
	p.waitFor("the banner", `!document.getElementById("banner").hidden && document.getElementById("banner-text").textContent.startsWith("Connection lost (server shutting down). Retrying in")`)
	p.do("type while offline", chromedp.SetValue(chromedp.CSS("#input"), "typed while offline"))
	p.screenshot("reconnecting")
	srv.Restart()
	p.waitFor("the reconnect", `[...document.querySelectorAll("#messages .event")].some((e) => e.textContent.startsWith("Reconnected."))`)
	p.waitFor("back in #team", `document.getElementById("conn").dataset.state === "online" && document.getElementById("conv-sub").textContent === "1 member"`)
	p.waitFor("bob offline", person("bob", "is-off"))
	if got := eval[string](p, `document.getElementById("input").value`); got != "typed while offline" {
		t.Errorf("after the reconnect the field holds %q", got)
	}
	eval[string](p, `document.getElementById("input").value = ""`)

	bob = lineV2(t, srv, "bob", "pw-bob")
	bob.Send("JOIN #team \r\n")
	bob.Expect("JOIN #team bob \r\n")
	bob.Expect("WHO #team 2 alice bob \r\n")
	// bob is online again, which only a WATCH sent after the reconnect tells.
	p.waitFor("bob online again", person("bob", "is-on"))
	bob.Send("MSG #team bob back again \r\n")
	p.waitMessage("bob", "back again")
	p.say("welcome back")
	bob.Expect("RELAY #team alice welcome back \r\n")
}

// TestBrowserForeignOrigin: a page that another site serves can neither
// open the WebSocket nor read /info.
func TestBrowserForeignOrigin(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
const out = [];
const ws = new WebSocket("wss://%[1]s/ws", "messager.v2");
ws.onopen = () => { out.push("open"); ws.send("HELLO 2"); ws.send("AUTH alice pw-alice"); };
ws.onmessage = (e) => out.push("read " + e.data);
ws.onclose = () => {
  fetch("https://%[1]s/info").then((r) => r.text()).then((t) => out.push("info " + t), () => out.push("info refused"))
    .finally(() => { document.title = "done: " + out.join(", "); });
};
</script>`, srv.Addr)
	}))
	t.Cleanup(evil.Close)
	b := startBrowser(t, srv)
	p := &page{t: t, ctx: b.ctx, name: "evil"}
	p.do("open the other site's page", chromedp.Navigate(evil.URL))
	p.waitFor("its attempt", `document.title.startsWith("done")`)
	if got := eval[string](p, `document.title`); got != "done: info refused" {
		t.Errorf("the other site's page got %q", got)
	}
}

// TestBrowserPhoneAndDark: on a phone-sized screen the list and the
// conversation take turns; dark mode follows the system.
func TestBrowserPhoneAndDark(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers, fastPresence)
	bob := srv.Login(t, "bob", "pw-bob")
	srv.Login(t, "carol", "pw-carol")
	b := startBrowser(t, srv)

	phone := b.newPage(t, "alice")
	phone.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	phone.login("alice", "pw-alice")
	phone.waitFor("people", person("bob", "is-on")+" && "+person("carol", "is-on"))
	bob.Send("MSG alice bob are you on your phone? \r\n")
	phone.waitFor("the conversation in the list", fmt.Sprintf(`!!document.querySelector(%s)`, js(convItem("bob"))))
	phone.screenshot("phone-list")
	if eval[bool](phone, `getComputedStyle(document.getElementById("main")).display !== "none"`) {
		t.Error("on a phone the list and the conversation show at once")
	}
	phone.do("open bob", chromedp.Click(chromedp.CSS(convItem("bob"))))
	phone.waitMessage("bob", "are you on your phone?")
	phone.say("yes, on the train")
	bob.Expect("RELAY bob alice yes, on the train \r\n")
	phone.waitFor("only the conversation", `getComputedStyle(document.getElementById("sidebar")).display === "none" && getComputedStyle(document.getElementById("back")).display !== "none"`)
	if w := eval[int](phone, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %d px wide on a 390 px screen", w)
	}
	phone.screenshot("phone")
	phone.do("back", chromedp.Click(chromedp.CSS("#back")))
	phone.waitFor("the list again", `getComputedStyle(document.getElementById("sidebar")).display !== "none" && document.activeElement.dataset.key === "bob"`)

	dark := b.newPage(t, "carol")
	dark.colorScheme("dark")
	dark.screenshot("dark-login")
	dark.login("carol", "pw-carol")
	bob.Send("MSG carol bob dark mode looks good \r\nMSG carol bob and it follows the system setting \r\n")
	dark.waitFor("bob's conversation", fmt.Sprintf(`!!document.querySelector(%s)`, js(convItem("bob"))))
	dark.do("open bob", chromedp.Click(chromedp.CSS(convItem("bob"))))
	dark.waitMessage("bob", "and it follows the system setting")
	dark.say("agreed")
	bob.Expect("RELAY bob carol agreed \r\n")
	if bg := eval[string](dark, `getComputedStyle(document.querySelector(".main")).backgroundColor`); bg != "rgb(20, 23, 28)" {
		t.Errorf("dark background %s", bg)
	}
	dark.screenshot("dark")
}

// TestBrowserWire: the page's own protocol module, in the browser: how
// it reads server lines and writes client lines, the backoff, and the
// colour of a name (FNV-1a of the name, so the same on every page).
func TestBrowserWire(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, testUsers)
	b := startBrowser(t, srv)
	p := b.newPage(t, "wire")
	for _, tc := range []struct{ line, want string }{
		{"HELLO 2 presence=100 groups=20,500", `{"verb":"HELLO","version":2,"features":{"presence":100,"groups":{"max":20,"members":500},"other":[]}}`},
		{"HELLO 2 groups=3,4 signup=invite", `{"verb":"HELLO","version":2,"features":{"presence":0,"groups":{"max":3,"members":4},"other":["signup=invite"]}}`},
		{"ACCEPT alice", `{"verb":"ACCEPT","user":"alice"}`},
		{"RELAY alice bob hi  there ", `{"verb":"RELAY","target":"alice","sender":"bob","text":"hi  there"}`},
		{"RELAY #team bob  a b", `{"verb":"RELAY","target":"#team","sender":"bob","text":" a b"}`},
		{"CNT carol <user not online>", `{"verb":"CNT","target":"carol","reason":"user not online"}`},
		{"CNT <user not online>", `{"verb":"CNT","target":"","reason":"user not online"}`},
		{"FAIL JOIN #ops <not allowed>", `{"verb":"FAIL","what":"JOIN","subject":"#ops","reason":"not allowed"}`},
		{"FAIL WHO al* <slow down>", `{"verb":"FAIL","what":"WHO","subject":"al*","reason":"slow down"}`},
		{"PRESENCE on bob carol", `{"verb":"PRESENCE","online":true,"names":["bob","carol"]}`},
		{"PRESENCE off bob", `{"verb":"PRESENCE","online":false,"names":["bob"]}`},
		{"WHO * 3 alice bob", `{"verb":"WHO","mask":"*","count":3,"names":["alice","bob"]}`},
		{"WHO #team 0", `{"verb":"WHO","mask":"#team","count":0,"names":[]}`},
		{"JOIN #Team bob", `{"verb":"JOIN","group":"#Team","user":"bob"}`},
		{"PART #team bob", `{"verb":"PART","group":"#team","user":"bob"}`},
		{"END <incorrect username or password>", `{"verb":"END","protocolError":false,"reason":"incorrect username or password"}`},
		{"END * <line too long>", `{"verb":"END","protocolError":true,"reason":"line too long"}`},
		{"CHECK", `{"verb":"CHECK"}`},
		{"TOPIC #team hello", `{"verb":"UNKNOWN","line":"TOPIC #team hello"}`},
	} {
		got := evalAsync[string](p, fmt.Sprintf(`import("/wire.js").then((w) => JSON.stringify(w.parse(%s)))`, js(tc.line)))
		if got != tc.want {
			t.Errorf("parse(%q):\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
	for _, tc := range []struct{ target, text, want string }{
		{"bob", "hi", `"MSG bob alice hi"`},
		{"#team", "  indented\tand tabbed \t ", `"MSG #team alice   indented\tand tabbed"`},
		{"bob", "no\x1b[2Jescapes\x00or\u0085controls", `"MSG bob alice no[2Jescapesorcontrols"`},
		{"bob", " \t ", `null`},
	} {
		got := evalAsync[string](p, fmt.Sprintf(`import("/wire.js").then((w) => JSON.stringify(w.msgLine(%s, "alice", %s)))`, js(tc.target), js(tc.text)))
		if got != tc.want {
			t.Errorf("msgLine(%q, %q) = %s, want %s", tc.target, tc.text, got, tc.want)
		}
	}
	backoff := evalAsync[[]int](p, `import("/conn.js").then((c) => [c.backoff(0, () => 0), c.backoff(0, () => 1), c.backoff(3, () => 0.5), c.backoff(30, () => 1), c.backoff(30, () => 0)])`)
	if fmt.Sprint(backoff) != "[250 500 3000 30000 15000]" {
		t.Errorf("backoff waits %v", backoff)
	}
	for _, name := range []string{"alice", "bob", "carol", "a.very-long_name.0123456789abcdef"} {
		h := fnv.New32a()
		h.Write([]byte(name))
		want := fmt.Sprintf("hue-%d", h.Sum32()%12)
		if got := evalAsync[string](p, fmt.Sprintf(`import("/app.js").then((a) => a.hue(%s))`, js(name))); got != want {
			t.Errorf("hue(%q) = %s, want %s", name, got, want)
		}
	}
}
