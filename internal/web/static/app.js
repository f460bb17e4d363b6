// The messager web client: login, people, conversations and groups over
// the connection in conn.js. Everything that came over the wire reaches
// the page as text (textContent, text nodes, attribute values), never as
// markup.

import { Connection } from "./conn.js";
import * as wire from "./wire.js";

const $ = (id) => document.getElementById(id);

const STORE_USER = "messager.user"; // the last user name; never the password
const GROUP_GAP = 5 * 60_000; // messages of one sender closer than this share a header
const KEEP = 1000; // messages kept per conversation
const WHO_EVERY = 30_000; // how often the page asks who is online

// h makes an element. Children that are strings become text nodes.
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c);
  }
  return el;
}

// An icon from the sprite in index.html.
function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

// hue gives every name its own colour, the same on every page: FNV-1a of
// the name picks one of the palette's twelve hues.
export function hue(name) {
  let x = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    x ^= name.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return `hue-${x % 12}`;
}

function avatar(name, extra = "") {
  const letter = name.startsWith("#") ? "#" : name.slice(0, 1).toUpperCase();
  return h("span", { class: `avatar ${hue(name)} ${extra}`, "aria-hidden": "true" }, letter);
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

// Characters that change the direction of the text around them. They are
// shown as visible marks, so a message cannot make other text read
// backwards or pretend to be something it is not.
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
const TOKENS = /([\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069])|(https?:\/\/[^\s<>"]+)/g;

// markControls is text for where no marks can be drawn (a preview, a
// notification): the direction controls spelled out, so they cannot turn
// the rest of the line around.
function markControls(text) {
  return text.replace(new RegExp(BIDI.source, "g"), (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
}

// richText returns the nodes of a message: text, marks for direction
// controls, and links for http(s) addresses, all built as nodes.
function richText(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(TOKENS)) {
    let token = m[0];
    let end = m.index + token.length;
    if (m[2]) {
      // A sentence's closing punctuation is not part of its address.
      const trimmed = token.replace(/[.,;:!?)\]}'"]+$/, "");
      end -= token.length - trimmed.length;
      token = trimmed;
    }
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1]) {
      const code = token.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      out.push(h("span", { class: "ctl", title: "invisible direction control character" }, `U+${code}`));
    } else {
      let url = null;
      try {
        url = new URL(token);
      } catch {
        url = null;
      }
      if (url && (url.protocol === "https:" || url.protocol === "http:")) {
        out.push(h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, token));
      } else {
        out.push(token);
      }
    }
    last = end;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// ---- state ---------------------------------------------------------------

const S = {
  me: "",
  features: null,
  convs: new Map(), // convKey → conversation
  current: "", // convKey of the open conversation
  people: new Map(), // name → true (online), false (offline), null (not known)
  whoMore: 0, // people online beyond the names WHO listed
  watched: new Set(),
  lastWho: 0,
  shown: false, // the chat screen is up
  nextId: 1,
  fingerprint: "",
  watchFullShown: false,
};

function conversation(name) {
  const key = wire.convKey(name);
  let c = S.convs.get(key);
  if (!c) {
    const kind = name.startsWith("#") ? "group" : name === "server" ? "server" : "direct";
    c = {
      key,
      name,
      kind,
      messages: [],
      unread: 0,
      last: Date.now(),
      joined: false,
      wanted: false,
      joining: false, // a JOIN is on its way
      quiet: false, // it is the rejoin after a reconnect: no "You joined"
      members: new Set(),
      lastMsg: null,
      draft: "",
    };
    S.convs.set(key, c);
  }
  return c;
}

const current = () => S.convs.get(S.current) || null;

function resetState() {
  S.me = "";
  S.features = null;
  S.convs.clear();
  S.current = "";
  S.people.clear();
  S.whoMore = 0;
  S.watched.clear();
  S.lastWho = 0;
  S.watchFullShown = false;
}

// ---- the connection -------------------------------------------------------

const wsURL = `${location.protocol === "http:" ? "ws" : "wss"}://${location.host}/ws`;
const conn = new Connection(wsURL);

function send(line) {
  return conn.send(line);
}

// chunks splits a list for WATCH and UNWATCH, which take 32 names a line.
function chunks(list, n) {
  const out = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

const hasPresence = () => Boolean(S.features && S.features.presence > 0);
const hasGroups = () => Boolean(S.features && S.features.groups);

// syncWatches watches the people of the conversations first, then the
// people list, up to the server's limit, and stops watching the rest.
function syncWatches() {
  if (!conn.online || !hasPresence()) return;
  const limit = S.features.presence;
  const want = new Set();
  const add = (n) => {
    if (n !== S.me && wire.isName(n) && n !== "server" && want.size < limit) want.add(n);
  };
  for (const c of sortedConvs()) if (c.kind === "direct") add(c.name);
  for (const n of S.people.keys()) add(n);
  const drop = [...S.watched].filter((n) => !want.has(n));
  const take = [...want].filter((n) => !S.watched.has(n));
  for (const part of chunks(drop, 32)) send(`UNWATCH ${part.join(" ")}`);
  for (const n of drop) S.watched.delete(n);
  for (const part of chunks(take, 32)) send(`WATCH ${part.join(" ")}`);
  for (const n of take) S.watched.add(n);
}

function askWho() {
  if (!conn.online || !hasPresence()) return;
  S.lastWho = Date.now();
  send("WHO *");
}

setInterval(askWho, WHO_EVERY);

conn.addEventListener("accepted", (ev) => {
  const { user, features, again } = ev.detail;
  S.me = user;
  S.features = features;
  S.watched.clear(); // a new session watches nobody
  if (!again) {
    showChat();
  } else {
    for (const c of S.convs.values()) {
      if (c.kind === "group" && c.wanted) {
        c.joining = true;
        c.quiet = true;
        send(`JOIN ${c.name}`);
      }
    }
    const c = current();
    if (c) addEvent(c, "Reconnected.", "info");
    else announce("Connected again.");
  }
  askWho();
  syncWatches();
  renderAll();
});

conn.addEventListener("state", (ev) => {
  const { state, reason, retryAt } = ev.detail;
  if (state === "refused") {
    if (S.shown) {
      hideChat();
      loginError(`Signed out: ${reason}. Please sign in again.`);
    } else {
      loginError(reason === "incorrect username or password" ? "Incorrect user name or password." : capital(reason) + ".");
    }
  } else if (state === "closed") {
    hideChat();
  } else if (state === "waiting" || state === "ended") {
    // Groups are left by the server when the session goes; they are
    // joined again after the reconnect.
    for (const c of S.convs.values()) {
      if (c.kind === "group") {
        c.joined = false;
        c.joining = false;
        c.members.clear();
      }
    }
    S.watched.clear();
    for (const n of S.people.keys()) S.people.set(n, null);
  }
  renderConnState(state, reason, retryAt);
  renderAll();
});

conn.addEventListener("line", (ev) => handle(ev.detail));

function handle(msg) {
  switch (msg.verb) {
    case "RELAY":
      return relay(msg);
    case "CNT":
      return notOnline(msg.target);
    case "FAIL":
      return failed(msg);
    case "PRESENCE":
      for (const n of msg.names) if (n !== S.me) S.people.set(n, msg.online);
      return renderPeopleAndHeader();
    case "WHO":
      return who(msg);
    case "JOIN":
      return joined(msg);
    case "PART":
      return parted(msg);
    case "END":
      return;
  }
}

function relay(msg) {
  let c;
  if (msg.target.startsWith("#")) {
    c = conversation(msg.target);
    if (msg.sender !== S.me) c.members.add(msg.sender);
  } else if (msg.sender === "server") {
    c = conversation("server");
  } else {
    c = conversation(msg.sender);
    if (msg.sender !== S.me) {
      S.people.set(msg.sender, true);
      syncWatches();
    }
  }
  addMessage(c, { from: msg.sender, text: msg.text, out: msg.sender === S.me });
}

// notOnline marks the most recent message to target that has no mark yet:
// it was not delivered.
function notOnline(target) {
  const name = target || lastDirect;
  if (!name) return;
  if (S.people.has(name) || S.convs.has(name)) S.people.set(name, false);
  const c = S.convs.get(wire.convKey(name));
  if (c) {
    const m = lastUnmarked(c);
    if (m) mark(c, m, `${name} is not online. Not delivered.`);
  }
  renderPeopleAndHeader();
}

function lastUnmarked(c) {
  for (let i = c.messages.length - 1; i >= 0; i--) {
    const m = c.messages[i];
    if (m.kind === "msg" && m.out && !m.status) return m;
  }
  return null;
}

function failed(msg) {
  const text = `${capital(msg.reason)}.`;
  switch (msg.what) {
    case "JOIN": {
      const c = conversation(msg.subject);
      c.joined = false;
      c.wanted = false;
      c.joining = false;
      c.quiet = false;
      addEvent(c, `Could not join ${msg.subject}: ${msg.reason}.`, "error");
      toast(`Could not join ${msg.subject}: ${msg.reason}.`);
      break;
    }
    case "PART": {
      const c = conversation(msg.subject);
      c.joined = false;
      c.wanted = false;
      addEvent(c, `Could not leave ${msg.subject}: ${msg.reason}.`, "error");
      break;
    }
    case "MSG": {
      const c = S.convs.get(wire.convKey(msg.subject));
      const m = c && lastUnmarked(c);
      if (m) mark(c, m, `Not sent: ${msg.reason}.`);
      else toast(`Message to ${msg.subject} not sent: ${msg.reason}.`);
      if (c && c.kind === "group" && msg.reason === "not a member") {
        c.joined = false;
        c.wanted = false;
      }
      break;
    }
    case "WATCH":
      if (!S.watchFullShown) {
        S.watchFullShown = true;
        toast(`Presence is shown for the first ${S.features ? S.features.presence : ""} people only: ${text}`, "info");
      }
      break;
    case "WHO":
      if (msg.reason !== "slow down") toast(`Who is online: ${text}`);
      break;
    default:
      toast(`${msg.what} ${msg.subject}: ${text}`);
  }
  renderAll();
}

function who(msg) {
  if (msg.mask === "*") {
    const listed = new Set(msg.names);
    for (const n of msg.names) if (n !== S.me) S.people.set(n, true);
    if (msg.count <= msg.names.length) {
      // The whole list: everyone else is offline.
      for (const n of S.people.keys()) if (!listed.has(n)) S.people.set(n, false);
    }
    S.whoMore = Math.max(0, msg.count - msg.names.length);
    syncWatches();
    renderPeopleAndHeader();
    return;
  }
  if (msg.mask.startsWith("#")) {
    const c = conversation(msg.mask);
    c.members = new Set(msg.names);
    for (const n of msg.names) seenOnline(n);
    syncWatches();
    renderPeopleAndHeader();
  }
}

// seenOnline adds someone met in a group to the people list: a group's
// members are online. The list stays short enough to read.
function seenOnline(name) {
  if (name === S.me || !wire.isName(name)) return;
  if (S.people.has(name) || S.people.size < 200) S.people.set(name, true);
}

function joined(msg) {
  const c = conversation(msg.group);
  c.name = msg.group; // the spelling the group was made with
  if (msg.user === S.me) {
    const quiet = c.quiet || c.joined;
    c.joined = true;
    c.wanted = true;
    c.joining = false;
    c.quiet = false;
    c.members.add(S.me);
    if (!quiet) addEvent(c, `You joined ${c.name}.`, "info");
  } else {
    c.members.add(msg.user);
    addEvent(c, `${msg.user} joined.`, "join");
    seenOnline(msg.user);
    syncWatches();
  }
  renderAll();
}

function parted(msg) {
  const c = conversation(msg.group);
  if (msg.user === S.me) {
    c.joined = false;
    c.wanted = false;
    c.members.clear();
    addEvent(c, `You left ${c.name}.`, "info");
  } else {
    c.members.delete(msg.user);
    addEvent(c, `${msg.user} left.`, "part");
  }
  renderAll();
}

// ---- messages ------------------------------------------------------------

let lastDirect = ""; // the last direct target, for a CNT that names nobody

function addMessage(c, { from, text, out }) {
  const m = { id: S.nextId++, kind: "msg", from, text, out, time: new Date(), status: null };
  push(c, m);
  const visible = c.key === S.current && document.visibilityState === "visible";
  if (!out) {
    if (!visible) c.unread++;
    if (c.key !== S.current) announce(`New message from ${from}${c.kind === "group" ? ` in ${c.name}` : ""}.`);
    notify(c, m);
  }
  renderConvList();
  updateTitle();
  return m;
}

function addEvent(c, text, tone) {
  push(c, { id: S.nextId++, kind: "event", text, tone, time: new Date() });
}

function push(c, m) {
  c.messages.push(m);
  if (m.kind === "msg") c.lastMsg = m;
  c.last = m.time.getTime();
  if (c.messages.length > KEEP) c.messages.splice(0, c.messages.length - KEEP);
  if (c.key === S.current) appendMessage(c, m);
}

function mark(c, m, text) {
  m.status = text;
  const el = ui.messages.querySelector(`[data-id="${m.id}"]`);
  if (el && c.key === S.current) {
    el.classList.add("failed");
    el.querySelector(".body").append(statusNode(text));
  }
}

function statusNode(text) {
  return h("p", { class: "status", role: "note" }, icon("alert"), h("span", {}, text));
}

function sendComposer() {
  const c = current();
  if (!c) return;
  const raw = ui.input.value;
  const lines = raw
    .split(/\r?\n/)
    .map(wire.cleanText)
    .filter((l) => l.trim() !== "");
  if (lines.length === 0) return;
  if (!conn.online) {
    composerNote("Not connected. Your text stays here until you are back online.", true);
    return;
  }
  if (c.kind === "group" && !c.joined) {
    composerNote(`Join ${c.name} to send to it.`, true);
    return;
  }
  if (c.kind === "server") return;
  const frames = lines.map((l) => wire.msgLine(c.name, S.me, l));
  const long = frames.find((f) => wire.byteLength(f) > wire.MAX_FRAME);
  if (long) {
    composerNote(`Too long by ${wire.byteLength(long) - wire.MAX_FRAME} bytes.`, true);
    return;
  }
  for (let i = 0; i < frames.length; i++) {
    if (!send(frames[i])) break;
    if (c.kind === "direct") lastDirect = c.name;
    // A message to oneself comes back as a RELAY; it is shown then.
    if (c.name !== S.me) addMessage(c, { from: S.me, text: lines[i], out: true });
  }
  ui.input.value = "";
  c.draft = "";
  composerNote("");
  updateCounter();
}

// ---- notifications -------------------------------------------------------

function notify(c, m) {
  if (document.visibilityState !== "hidden") return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = c.kind === "group" ? `${m.from} in ${c.name}` : m.from;
  try {
    const n = new Notification(title, { body: markControls(m.text).slice(0, 200), tag: c.key });
    n.onclick = () => {
      window.focus();
      openConversation(c.name);
      n.close();
    };
  } catch {
    // some browsers allow notifications only from a service worker
  }
}

function renderNotifyButton() {
  const b = ui.notify;
  if (!("Notification" in window)) {
    b.hidden = true;
    return;
  }
  b.hidden = false;
  const p = Notification.permission;
  b.disabled = p !== "default";
  b.replaceChildren(icon("bell"), h("span", {}, p === "granted" ? "Notifications on" : p === "denied" ? "Notifications blocked" : "Turn on notifications"));
  b.title =
    p === "granted"
      ? "You are notified of new messages while this tab is hidden."
      : p === "denied"
        ? "Notifications are blocked in this browser's site settings."
        : "Be notified of new messages while this tab is hidden.";
}

// ---- rendering -----------------------------------------------------------

const ui = {};
for (const id of [
  "login", "login-form", "login-user", "login-password", "login-submit", "login-error", "login-fingerprint",
  "chat", "me-avatar", "me-name", "logout", "conn", "conn-text",
  "open-form", "open-input", "open-error", "conv-list", "conv-empty", "people-list", "people-more", "people-count", "who-refresh",
  "notify", "fingerprint", "version", "copy-fp",
  "empty", "conversation", "back", "conv-avatar", "conv-name", "conv-sub", "members", "member-count", "member-list",
  "leave", "rejoin", "messages", "jump", "composer", "input", "send", "composer-note", "counter",
  "toasts", "announcer", "banner", "banner-text", "banner-retry",
]) {
  ui[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = $(id);
}

function capital(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function sortedConvs() {
  return [...S.convs.values()].sort((a, b) => b.last - a.last);
}

function renderAll() {
  renderPeopleAndHeader();
  renderComposerState();
  updateTitle();
}

function renderPeopleAndHeader() {
  renderPeople();
  renderHeader();
  renderConvList();
}

function presenceOf(name) {
  if (name === S.me) return conn.online ? true : null;
  return S.people.has(name) ? S.people.get(name) : null;
}

function presenceDot(state) {
  const cls = state === true ? "on" : state === false ? "off" : "unknown";
  return h("span", { class: `dot ${cls}`, "aria-hidden": "true" });
}

function renderConvList() {
  const items = [];
  for (const c of sortedConvs()) {
    const lastMsg = c.lastMsg;
    const preview = lastMsg ? `${lastMsg.out ? "You" : lastMsg.from}: ${markControls(lastMsg.text)}` : c.kind === "group" ? (c.joined || c.wanted ? "Joined" : "Not joined") : "No messages yet";
    let state = "";
    if (c.kind === "direct") {
      const p = presenceOf(c.name);
      state = p === true ? ", online" : p === false ? ", offline" : "";
    }
    const label = `${c.kind === "server" ? "Server notices" : c.name}${state}${c.unread ? `, ${c.unread} unread` : ""}`;
    const btn = h(
      "button",
      {
        class: "conv-item",
        type: "button",
        "data-key": c.key,
        "aria-current": c.key === S.current ? "true" : false,
        "aria-label": label,
        onclick: () => openConversation(c.name),
      },
      h("span", { class: "avatar-wrap" }, avatar(c.kind === "server" ? "!" : c.name), c.kind === "direct" ? presenceDot(presenceOf(c.name)) : null),
      h(
        "span",
        { class: "conv-text" },
        h("span", { class: "conv-title" }, c.kind === "server" ? "Server notices" : c.name),
        h("span", { class: "conv-preview" }, preview),
      ),
      c.unread ? h("span", { class: "badge", "aria-hidden": "true" }, c.unread > 99 ? "99+" : String(c.unread)) : null,
    );
    items.push(h("li", {}, btn));
  }
  ui.convList.replaceChildren(...items);
  ui.convEmpty.hidden = items.length > 0;
}

function renderPeople() {
  const names = [...S.people.keys()].filter((n) => n !== S.me);
  const rank = (n) => (S.people.get(n) === true ? 0 : S.people.get(n) === null ? 1 : 2);
  names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const online = names.filter((n) => S.people.get(n) === true).length;
  ui.peopleCount.textContent = hasPresence() ? `${online + S.whoMore} online` : "";
  const items = names.map((n) => {
    const st = S.people.get(n);
    return h(
      "li",
      {},
      h(
        "button",
        {
          class: `person ${st === true ? "is-on" : st === false ? "is-off" : ""}`,
          type: "button",
          "data-name": n,
          "aria-label": `${n}, ${st === true ? "online" : st === false ? "offline" : "status not known"}. Open conversation`,
          onclick: () => openConversation(n),
        },
        h("span", { class: "avatar-wrap" }, avatar(n, "small"), presenceDot(st)),
        h("span", { class: "person-name" }, n),
        h("span", { class: "person-state" }, st === true ? "online" : st === false ? "offline" : ""),
      ),
    );
  });
  ui.peopleList.replaceChildren(...items);
  ui.peopleMore.hidden = S.whoMore === 0;
  ui.peopleMore.textContent = `and ${S.whoMore} more online`;
  if (!hasPresence() && conn.online) {
    ui.peopleList.replaceChildren(h("li", { class: "muted" }, "This server does not offer presence."));
  } else if (items.length === 0) {
    ui.peopleList.replaceChildren(h("li", { class: "muted" }, conn.online ? "Nobody else is online." : "Not connected."));
  }
}

function renderHeader() {
  const c = current();
  ui.conversation.hidden = !c;
  ui.empty.hidden = Boolean(c);
  if (!c) return;
  ui.convAvatar.replaceChildren(avatar(c.kind === "server" ? "!" : c.name));
  ui.convName.textContent = c.kind === "server" ? "Server notices" : c.name;
  ui.leave.hidden = !(c.kind === "group" && c.joined);
  ui.rejoin.hidden = !(c.kind === "group" && !c.joined && !c.joining && !c.wanted);
  ui.members.hidden = c.kind !== "group" || !c.joined;
  let sub = "";
  if (c.kind === "group") {
    sub = c.joined
      ? `${c.members.size} ${c.members.size === 1 ? "member" : "members"}`
      : c.joining
        ? "Joining…"
        : c.wanted
          ? "Rejoins when the connection is back"
          : "You are not in this group";
    ui.memberCount.textContent = `${c.members.size}`;
    ui.memberList.replaceChildren(
      ...[...c.members].sort().map((n) =>
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", class: "member", disabled: n === S.me, onclick: () => openConversation(n) },
            avatar(n, "tiny"),
            h("span", {}, n === S.me ? `${n} (you)` : n),
          ),
        ),
      ),
    );
  } else if (c.kind === "direct") {
    const p = presenceOf(c.name);
    sub = c.name === S.me ? "Notes to yourself" : p === true ? "Online" : p === false ? "Offline" : "";
    ui.convSub.classList.toggle("on", p === true);
  } else {
    sub = "Notices from the server's operator";
  }
  ui.convSub.textContent = sub;
  renderComposerState();
}

function messageNode(c, m, prev) {
  if (m.kind === "event") {
    return h("li", { class: `event ${m.tone || ""}`, "data-id": m.id }, h("span", {}, m.text), " ", timeNode(m.time));
  }
  const cont = prev && prev.kind === "msg" && prev.from === m.from && m.time - prev.time < GROUP_GAP;
  const li = h(
    "li",
    { class: `msg${m.out ? " out" : ""}${cont ? " cont" : ""}${m.status ? " failed" : ""}`, "data-id": m.id, "data-from": m.from },
    cont ? h("span", { class: "gutter" }, timeNode(m.time, "short")) : avatar(m.from),
    h(
      "div",
      { class: "body" },
      h("p", { class: "meta" }, h("span", { class: `from ${hue(m.from)}` }, m.from), " ", timeNode(m.time)),
      h("p", { class: "text", dir: "auto" }, richText(m.text)),
      m.status ? statusNode(m.status) : null,
    ),
  );
  return li;
}

// shortTime is the time without AM or PM, for the narrow gutter beside a
// message that follows another of the same sender.
function shortTime(t) {
  return timeFmt
    .formatToParts(t)
    .filter((p) => p.type !== "dayPeriod")
    .map((p) => p.value)
    .join("")
    .trim();
}

function timeNode(t, cls = "") {
  const text = cls === "short" ? shortTime(t) : timeFmt.format(t);
  return h("time", { datetime: t.toISOString(), title: fullFmt.format(t), class: cls || false }, text);
}

function nearBottom() {
  const el = ui.messages;
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
  ui.jump.hidden = true;
}

function renderMessages() {
  const c = current();
  if (!c) return;
  ui.messages.setAttribute("aria-busy", "true");
  const nodes = c.messages.map((m, i) => messageNode(c, m, c.messages[i - 1]));
  if (nodes.length === 0) {
    nodes.push(
      h(
        "li",
        { class: "event intro" },
        c.kind === "group"
          ? `This is the start of ${c.name} for you. Messages go to everyone in the group.`
          : c.name === S.me
            ? "Messages to yourself come straight back."
            : `This is the start of your conversation with ${c.name}.`,
      ),
    );
  }
  ui.messages.replaceChildren(...nodes);
  scrollToBottom();
  ui.messages.removeAttribute("aria-busy");
}

function appendMessage(c, m) {
  const stick = nearBottom() || m.out;
  const intro = ui.messages.querySelector(".intro");
  if (intro) intro.remove();
  ui.messages.append(messageNode(c, m, c.messages[c.messages.length - 2]));
  while (ui.messages.childElementCount > KEEP) ui.messages.firstElementChild.remove();
  if (stick) scrollToBottom();
  else ui.jump.hidden = false;
}

function renderComposerState() {
  const c = current();
  if (!c) return;
  const blocked = c.kind === "server" || (c.kind === "group" && !c.joined);
  ui.composer.hidden = c.kind === "server";
  ui.send.disabled = !conn.online || blocked;
  ui.input.placeholder = c.kind === "group" ? `Message ${c.name}` : c.name === S.me ? "Write a note to yourself" : `Message ${c.name}`;
  if (!conn.online) composerNote("Not connected. What you type stays here.");
  else if (c.kind === "group" && !c.joined && !c.joining && !c.wanted) composerNote(`You are not in ${c.name}. Join it to send.`);
  else composerNote("");
}

function composerNote(text, alert = false) {
  ui.composerNote.textContent = text;
  ui.composerNote.hidden = !text;
  ui.composerNote.classList.toggle("alert", alert);
}

function updateCounter() {
  const c = current();
  const text = ui.input.value;
  if (!c || text.length < 3000) {
    ui.counter.hidden = true;
    return;
  }
  // Each line goes as its own message; the longest one is what counts.
  const worst = Math.max(...text.split(/\r?\n/).map((l) => wire.byteLength(`MSG ${c.name} ${S.me} ${l}`)));
  const left = wire.MAX_FRAME - worst;
  ui.counter.hidden = false;
  ui.counter.textContent = left >= 0 ? `${left} bytes left` : `${-left} bytes too long`;
  ui.counter.classList.toggle("alert", left < 0);
}

function updateTitle() {
  let n = 0;
  for (const c of S.convs.values()) n += c.unread;
  document.title = n > 0 ? `(${n}) messager` : S.me ? `${S.me} · messager` : "messager";
}

let announceTimer = 0;
function announce(text) {
  ui.announcer.textContent = text;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => (ui.announcer.textContent = ""), 4000);
}

function toast(text, tone = "error") {
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, icon("x"));
  const t = h("div", { class: `toast ${tone}` }, icon(tone === "error" ? "alert" : "info"), h("span", {}, text), close);
  close.addEventListener("click", () => t.remove());
  ui.toasts.append(t);
  while (ui.toasts.childElementCount > 4) ui.toasts.firstElementChild.remove();
  setTimeout(() => t.remove(), 10_000);
}

let countdown = 0;

// renderConnState shows the connection's state twice: briefly under the
// user's name, and in full (with what to do) in a banner over the
// conversation, which is in sight on a phone too.
function renderConnState(state, reason, retryAt) {
  clearInterval(countdown);
  ui.conn.dataset.state = state;
  ui.banner.dataset.state = state;
  const why = reason ? ` (${reason})` : "";
  let short = "Not connected";
  let long = "";
  let retry = "";
  switch (state) {
    case "connecting":
      short = S.shown ? "Connecting…" : "Signing in…";
      long = S.shown ? "Connecting…" : "";
      break;
    case "online":
      short = "Connected";
      break;
    case "waiting": {
      short = "Reconnecting…";
      retry = "Retry now";
      const tick = () => {
        const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
        ui.bannerText.textContent = `Connection lost${why}. Retrying in ${s} s`;
      };
      countdown = setInterval(tick, 1000);
      long = null; // tick() fills it in
      tick();
      break;
    }
    case "ended":
      short = "Disconnected";
      long = reason === "logged in elsewhere" ? "You signed in somewhere else, so this window was disconnected." : `Disconnected by the server: ${reason}.`;
      if (reason !== "account removed" && reason !== "banned") retry = "Connect again";
      break;
  }
  ui.connText.textContent = short;
  if (long !== null) ui.bannerText.textContent = long;
  ui.banner.hidden = !S.shown || state === "online" || state === "closed" || state === "refused";
  ui.bannerRetry.hidden = !retry;
  ui.bannerRetry.textContent = retry;
  const signingIn = state === "connecting" && !S.shown;
  ui.loginSubmit.disabled = signingIn;
  ui.loginSubmit.textContent = signingIn ? "Signing in…" : "Sign in";
}

// ---- screens -------------------------------------------------------------

function showChat() {
  S.shown = true;
  ui.login.hidden = true;
  ui.chat.hidden = false;
  ui.meName.textContent = S.me;
  ui.meAvatar.replaceChildren(avatar(S.me));
  ui.loginPassword.value = "";
  setView("list");
  renderNotifyButton();
  renderAll();
  if (S.current) ui.input.focus();
  else ui.openInput.focus();
}

function hideChat() {
  const wasShown = S.shown;
  S.shown = false;
  resetState();
  ui.chat.hidden = true;
  ui.login.hidden = false;
  ui.conversation.hidden = true;
  ui.messages.replaceChildren();
  ui.input.value = "";
  document.title = "messager";
  if (wasShown) ui.loginPassword.focus();
}

function loginError(text) {
  ui.loginError.textContent = text;
  ui.loginError.hidden = !text;
  if (text) ui.loginPassword.focus();
}

function setView(view) {
  ui.chat.dataset.view = view;
}

function openConversation(name) {
  const prev = current();
  if (prev) prev.draft = ui.input.value;
  const c = conversation(name);
  S.current = c.key;
  c.unread = 0;
  ui.members.open = false;
  if (c.kind === "direct" && c.name !== S.me && !S.people.has(c.name)) S.people.set(c.name, null);
  ui.input.value = c.draft;
  setView("conv");
  renderMessages();
  renderAll();
  syncWatches();
  ui.input.focus();
}

function joinGroup(c) {
  if (!hasGroups()) {
    toast("This server does not offer groups.");
    return;
  }
  if (c.joining || c.joined) return;
  c.wanted = true;
  c.joining = send(`JOIN ${c.name}`);
}

// ---- wiring --------------------------------------------------------------

ui.loginForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const user = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  if (!wire.isName(user)) {
    loginError("A user name has 1 to 32 letters, digits, and _ . -");
    ui.loginUser.focus();
    return;
  }
  if (password === "" || /[\s\u0000-\u001F\u007F-\u009F]/.test(password) || wire.byteLength(password) > 128) {
    loginError("A password has 1 to 128 bytes and no spaces.");
    return;
  }
  loginError("");
  try {
    localStorage.setItem(STORE_USER, user);
  } catch {
    // storage may be off; the name is only a convenience
  }
  conn.login(user, password);
});

ui.logout.addEventListener("click", () => conn.logout());
ui.bannerRetry.addEventListener("click", () => conn.retryNow());

// The member list closes with Escape or a click elsewhere.
document.addEventListener("click", (ev) => {
  if (ui.members.open && !ui.members.contains(ev.target)) ui.members.open = false;
});
ui.members.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && ui.members.open) {
    ui.members.open = false;
    ui.members.querySelector("summary").focus();
  }
});
ui.whoRefresh.addEventListener("click", askWho);
ui.back.addEventListener("click", () => {
  setView("list");
  const item = ui.convList.querySelector(`[data-key="${CSS.escape(S.current)}"]`);
  if (item) item.focus();
});
ui.leave.addEventListener("click", () => {
  const c = current();
  if (c && c.kind === "group") send(`PART ${c.name}`);
});
ui.rejoin.addEventListener("click", () => {
  const c = current();
  if (c && c.kind === "group") joinGroup(c);
});
ui.jump.addEventListener("click", scrollToBottom);
ui.messages.addEventListener("scroll", () => {
  if (nearBottom()) ui.jump.hidden = true;
});

ui.openForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = ui.openInput.value.trim();
  const ok = wire.isName(v) || wire.isGroup(v);
  ui.openError.hidden = ok;
  if (!ok) {
    ui.openError.textContent = v.startsWith("#")
      ? "A group is # and 1 to 32 letters, digits, and _ . -"
      : "A name has 1 to 32 letters, digits, and _ . - (start a group with #)";
    return;
  }
  ui.openInput.value = "";
  const c = conversation(v);
  if (c.kind === "group" && !c.joined) joinGroup(c);
  openConversation(v);
});

ui.composer.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendComposer();
});
ui.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendComposer();
  }
});
ui.input.addEventListener("input", updateCounter);

ui.notify.addEventListener("click", async () => {
  if (!("Notification" in window)) return;
  try {
    await Notification.requestPermission();
  } finally {
    renderNotifyButton();
  }
});

ui.copyFp.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(S.fingerprint);
    ui.copyFp.textContent = "Copied";
  } catch {
    ui.copyFp.textContent = "Copy failed";
  }
  setTimeout(() => (ui.copyFp.textContent = "Copy"), 1500);
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  const c = current();
  if (c && c.unread) {
    c.unread = 0;
    renderConvList();
    updateTitle();
  }
  if (Date.now() - S.lastWho > 10_000) askWho();
});

// Alt+Up and Alt+Down move between conversations; Ctrl+K (or Cmd+K)
// goes to the field that opens one.
document.addEventListener("keydown", (ev) => {
  if (!S.shown) return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k") {
    ev.preventDefault();
    setView("list");
    ui.openInput.focus();
    return;
  }
  if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
    const list = sortedConvs();
    if (list.length === 0) return;
    ev.preventDefault();
    let i = list.findIndex((c) => c.key === S.current);
    i = i < 0 ? 0 : (i + (ev.key === "ArrowUp" ? -1 : 1) + list.length) % list.length;
    openConversation(list[i].name);
  }
});

// fingerprintText shows sha256:hex in the pairs a browser's certificate
// viewer uses.
function fingerprintText(fp) {
  const hex = fp.replace(/^sha256:/, "");
  return hex.toUpperCase().match(/.{1,2}/g)?.join(" ") ?? fp;
}

async function loadInfo() {
  try {
    const r = await fetch("/info", { cache: "no-store" });
    const info = await r.json();
    S.fingerprint = String(info.fingerprint || "");
    const shown = S.fingerprint ? fingerprintText(S.fingerprint) : "not known";
    ui.loginFingerprint.textContent = shown;
    ui.fingerprint.textContent = shown;
    ui.loginFingerprint.title = S.fingerprint;
    ui.fingerprint.title = S.fingerprint;
    ui.version.textContent = info.version ? `messager ${info.version}` : "messager";
  } catch {
    ui.loginFingerprint.textContent = "could not be read";
  }
}

function start() {
  let saved = "";
  try {
    saved = localStorage.getItem(STORE_USER) || "";
  } catch {
    saved = "";
  }
  $("login-lead").textContent = `Chat with the people on ${location.host}.`;
  if (saved && wire.isName(saved)) {
    ui.loginUser.value = saved;
    ui.loginPassword.focus();
  } else {
    ui.loginUser.focus();
  }
  loadInfo();
  document.documentElement.classList.add("ready");
}

start();
