// The connection: a WebSocket to /ws on the page's own server, logged in
// with HELLO 2 and AUTH, and opened again with backoff when it drops. The
// page above it sees lines and state changes as events.

import { parse } from "./wire.js";

export const SUBPROTOCOL = "messager.v2";

// END reasons after which trying again would be wrong: the password is
// wrong, the user asked to go, or someone decided this session must end.
const LOGIN_REFUSED = new Set(["incorrect username or password", "too many attempts"]);
const FINAL = new Set(["end accepted", "logged in elsewhere", "account removed", "kicked", "banned"]);

const BACKOFF_FIRST = 500; // ms
const BACKOFF_MAX = 30_000;
// The server sends CHECK every 30 s by default; a connection that says
// nothing for this long is taken as dead even if the browser has not noticed.
const SILENCE = 90_000;

/**
 * backoff is the wait before the attempt-th retry (from 0): doubling up to
 * a cap, each wait drawn at random from its upper half so that many pages
 * dropped at once by a restart do not all come back in the same instant.
 */
export function backoff(attempt, random = Math.random) {
  const full = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** Math.min(attempt, 16));
  return Math.round(full / 2 + random() * (full / 2));
}

/**
 * Connection events (each a CustomEvent with its detail):
 *  - "line": a parsed server line
 *  - "accepted": logged in ({ user, features, again }: again is true after a reconnect)
 *  - "state": { state, reason, retryAt } where state is one of
 *    "connecting", "online", "waiting" (to retry), "refused" (the login was
 *    refused), "ended" (for good, with the server's reason), "closed" (logged out)
 */
export class Connection extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.user = "";
    this.password = ""; // kept in memory only, for logging back in; never stored
    this.attempt = 0;
    this.everAccepted = false;
    this.features = null;
    this.state = "closed";
    this.timer = 0;
    this.lastHeard = 0;
    this.endReason = null;
    this.watchdog = setInterval(() => this.checkSilence(), 10_000);
    window.addEventListener("online", () => {
      if (this.state === "waiting") this.retryNow();
    });
  }

  /** login opens a connection as user; the password is kept in memory for reconnects. */
  login(user, password) {
    this.stop();
    this.user = user;
    this.password = password;
    this.attempt = 0;
    this.everAccepted = false;
    this.open();
  }

  /** logout says END; the server answers END <end accepted> and closes. */
  logout() {
    const ws = this.ws;
    this.password = "";
    if (ws && ws.readyState === WebSocket.OPEN && this.state === "online") {
      this.endReason = "end accepted";
      ws.send("END");
      // If the answer does not come soon, close anyway.
      setTimeout(() => ws.close(), 2000);
      this.setState("closed", "end accepted");
      return;
    }
    this.stop();
    this.setState("closed", "");
  }

  /** forget drops the password and any connection. */
  forget() {
    this.password = "";
    this.stop();
  }

  /** retryNow skips the rest of a backoff wait. */
  retryNow() {
    if (!this.password) return;
    clearTimeout(this.timer);
    this.open();
  }

  /** send writes one line; it returns false when not logged in. */
  send(line) {
    if (this.state !== "online" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(line);
    return true;
  }

  get online() {
    return this.state === "online";
  }

  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // already closing
      }
    }
  }

  setState(state, reason = "", retryAt = 0) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, reason, retryAt } }));
  }

  open() {
    this.stop();
    this.endReason = null;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.closed(String(err));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      if (ws.protocol !== SUBPROTOCOL) {
        ws.close();
        return;
      }
      // AUTH may follow HELLO at once; the server answers both in order.
      ws.send("HELLO 2");
      ws.send(`AUTH ${this.user} ${this.password}`);
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      if (typeof ev.data !== "string") return; // the server sends text only
      this.handle(parse(ev.data));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(this.endReason);
    };
  }

  handle(msg) {
    switch (msg.verb) {
      case "HELLO":
        this.features = msg.features;
        return;
      case "ACCEPT": {
        const again = this.everAccepted;
        this.everAccepted = true;
        this.attempt = 0;
        this.setState("online");
        const features = this.features || { presence: 0, groups: null, other: [] };
        this.dispatchEvent(new CustomEvent("accepted", { detail: { user: msg.user, features, again } }));
        return;
      }
      case "END":
        this.endReason = msg.protocolError ? `* ${msg.reason}` : msg.reason;
        break;
    }
    this.dispatchEvent(new CustomEvent("line", { detail: msg }));
  }

  // closed decides what comes after a closed socket.
  closed(reason) {
    if (this.state === "closed") return; // logged out
    if (reason && LOGIN_REFUSED.has(reason)) {
      this.password = "";
      this.setState("refused", reason);
      return;
    }
    if (reason && FINAL.has(reason)) {
      this.setState("ended", reason);
      return;
    }
    if (!this.everAccepted) {
      // The login itself failed: say so at the login form rather than
      // retrying behind the user's back.
      this.password = "";
      this.setState("refused", reason || "could not reach the server");
      return;
    }
    const wait = backoff(this.attempt++);
    this.timer = setTimeout(() => this.open(), wait);
    this.setState("waiting", reason || "", Date.now() + wait);
  }

  checkSilence() {
    if (this.ws && this.state === "online" && Date.now() - this.lastHeard > SILENCE) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
      this.closed("no answer from the server");
    }
  }
}
