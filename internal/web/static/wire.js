// The messager protocol, version 2, as the page speaks it over the
// WebSocket: one text frame is one line without its line end. This module
// only parses and formats lines; it knows nothing of the page or the socket.

/** A user name: 1 to 32 of A-Z a-z 0-9 _ . - */
export const NAME = /^[A-Za-z0-9_.-]{1,32}$/;
/** A group: # and a name. Groups compare ignoring ASCII case. */
export const GROUP = /^#[A-Za-z0-9_.-]{1,32}$/;

/**
 * The longest frame the page sends, in UTF-8 bytes: a client line may be
 * 4096 bytes with its line end, and the server adds the "\n".
 */
export const MAX_FRAME = 4095;

export const isName = (s) => NAME.test(s);
export const isGroup = (s) => GROUP.test(s);
/** The key a conversation is filed under: groups fold case, names do not. */
export const convKey = (s) => (s.startsWith("#") ? s.toLowerCase() : s);

const encoder = new TextEncoder();
export const byteLength = (s) => encoder.encode(s).length;

// Control characters a line may not hold (TAB is allowed), so they are
// dropped from what the user types rather than breaking the session.
const CONTROLS = /[\u0000-\u0008\u000A-\u001F\u007F-\u009F]/g;

/**
 * cleanText makes typed text sendable: no control characters but TAB, and
 * no spaces or tabs at the end (the server trims them, and a text of only
 * spaces would leave a line with a field missing).
 */
export function cleanText(s) {
  return s.replace(CONTROLS, "").replace(/[ \t]+$/, "");
}

/** msgLine formats a MSG; it returns null if the text is empty. */
export function msgLine(target, sender, text) {
  const t = cleanText(text);
  return t === "" ? null : `MSG ${target} ${sender} ${t}`;
}

// reason takes "<why>" and returns "why"; anything else as it is.
function reason(s) {
  const m = /^<(.*)>$/.exec(s);
  return m ? m[1] : s;
}

// cut splits off n space-separated fields and returns them with the rest
// of the line (which may hold spaces).
function cut(s, n) {
  const out = [];
  let rest = s;
  for (let i = 0; i < n; i++) {
    const sp = rest.indexOf(" ");
    if (sp < 0) {
      out.push(rest);
      rest = "";
    } else {
      out.push(rest.slice(0, sp));
      rest = rest.slice(sp + 1);
    }
  }
  out.push(rest);
  return out;
}

/** parseFeatures reads HELLO's features: presence=N, groups=G,M, others kept as text. */
export function parseFeatures(words) {
  const f = { presence: 0, groups: null, other: [] };
  for (const w of words) {
    const [k, v = ""] = w.split("=", 2);
    if (k === "presence" && /^\d+$/.test(v)) {
      f.presence = Number(v);
    } else if (k === "groups" && /^\d+,\d+$/.test(v)) {
      const [g, m] = v.split(",").map(Number);
      f.groups = { max: g, members: m };
    } else if (w !== "") {
      f.other.push(w);
    }
  }
  return f;
}

/**
 * parse reads one server line into an object with a `verb`. Lines whose
 * first word is unknown come back as { verb: "UNKNOWN" } and are ignored,
 * as the protocol asks.
 */
export function parse(raw) {
  const line = String(raw).replace(/[ \t\r\n]+$/, "");
  const [verb, rest] = cut(line, 1);
  switch (verb) {
    case "HELLO": {
      const words = rest.split(" ");
      return { verb, version: Number(words[0]), features: parseFeatures(words.slice(1)) };
    }
    case "ACCEPT":
      return { verb, user: rest };
    case "RELAY": {
      const [target, sender, text] = cut(rest, 2);
      return { verb, target, sender, text };
    }
    case "CNT": {
      // Version 2 names the target: CNT bob <user not online>.
      if (rest.startsWith("<")) return { verb, target: "", reason: reason(rest) };
      const [target, why] = cut(rest, 1);
      return { verb, target, reason: reason(why) };
    }
    case "FAIL": {
      const [what, subject, why] = cut(rest, 2);
      return { verb, what, subject, reason: reason(why) };
    }
    case "PRESENCE": {
      const [state, names] = cut(rest, 1);
      return { verb, online: state === "on", names: names === "" ? [] : names.split(" ") };
    }
    case "WHO": {
      const [mask, count, names] = cut(rest, 2);
      return { verb, mask, count: Number(count), names: names === "" ? [] : names.split(" ") };
    }
    case "JOIN":
    case "PART": {
      const [group, user] = cut(rest, 1);
      return { verb, group, user };
    }
    case "CHECK":
      return { verb };
    case "END": {
      // END * <why> is the server saying the client broke the protocol.
      if (rest.startsWith("* ")) return { verb, protocolError: true, reason: reason(rest.slice(2)) };
      return { verb, protocolError: false, reason: reason(rest) };
    }
    default:
      return { verb: "UNKNOWN", line };
  }
}
