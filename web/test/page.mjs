// Drives the chat page script (web/app.js) against a running chat-server, in Node with a tiny fake
// DOM: history, push via the official client, own-message round trip, long poll, polling, and the
// fallback when /socket.io/socket.io.js is missing. Element.innerHTML throws, so the page can only
// render text as text.
// Usage: node web/test/page.mjs http://127.0.0.1:PORT
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { io } from "socket.io-client";

const base = process.argv[2];
if (!base) {
  console.error("usage: node page.mjs http://HOST:PORT");
  process.exit(2);
}
const APP_JS = readFileSync(new URL("../app.js", import.meta.url), "utf8");
const TIMEOUT_MS = 10_000;

class FakeElement {
  constructor(tag, id = "") {
    this.tagName = tag;
    this.id = id;
    this.children = [];
    this.dataset = {};
    this.className = "";
    this.hidden = false;
    this.value = "";
    this.checked = false;
    this.disabled = false;
    this.listeners = {};
    this.ownText = "";
    const el = this;
    this.classList = {
      add(name) { if (!el.className.split(" ").includes(name)) el.className = `${el.className} ${name}`.trim(); },
      contains(name) { return el.className.split(" ").includes(name); },
    };
  }
  get textContent() { return this.ownText + this.children.map((c) => c.textContent).join(""); }
  set textContent(v) { this.children = []; this.ownText = String(v); }
  set innerHTML(_) { throw new Error("the page must not use innerHTML"); }
  appendChild(child) { this.children.push(child); return child; }
  insertBefore(child, ref) {
    const i = ref ? this.children.indexOf(ref) : -1;
    if (i < 0) this.children.push(child); else this.children.splice(i, 0, child);
    return child;
  }
  get lastElementChild() { return this.children.filter((c) => c instanceof FakeElement).at(-1) ?? null; }
  querySelector(selector) {
    const cls = selector.startsWith(".") ? selector.slice(1) : null;
    for (const c of this.children) {
      if (!(c instanceof FakeElement)) continue;
      if (cls && c.classList.contains(cls)) return c;
      const deeper = c.querySelector(selector);
      if (deeper) return deeper;
    }
    return null;
  }
  addEventListener(type, fn) { (this.listeners[type] ??= []).push(fn); }
  dispatch(type, event = {}) { for (const fn of this.listeners[type] ?? []) fn({ preventDefault() {}, ...event }); }
  scrollIntoView() {}
}

function fakePage({ withSocketIo }) {
  const ids = ["messages", "status", "note", "modes", "interval", "send", "name", "message"];
  const els = Object.fromEntries(ids.map((id) => [id, new FakeElement("div", id)]));
  els.note.hidden = true;
  els.interval.value = "5";
  // Radio buttons of one group: checking one unchecks the others, as in a browser.
  const radios = ["push", "longpoll", "poll"].map((value) => {
    const r = new FakeElement("input");
    r.value = value;
    return r;
  });
  for (const r of radios) {
    let checked = false;
    Object.defineProperty(r, "checked", {
      get: () => checked,
      set: (v) => {
        if (v) for (const other of radios) if (other !== r) other.checked = false;
        checked = Boolean(v);
      },
    });
  }
  radios[0].checked = true;
  const document = {
    getElementById: (id) => els[id] ?? null,
    createElement: (tag) => new FakeElement(tag),
    createTextNode: (text) => ({ textContent: String(text) }),
    querySelector: (selector) => {
      if (selector === 'input[name="mode"]:checked') return radios.find((r) => r.checked);
      const m = selector.match(/^input\[value="(\w+)"\]$/);
      if (m) return radios.find((r) => r.value === m[1]);
      throw new Error(`fake DOM does not support ${selector}`);
    },
  };
  const storage = new Map();
  const context = {
    document,
    console,
    performance,
    setTimeout,
    clearTimeout,
    AbortController,
    URL,
    requestAnimationFrame: (fn) => setTimeout(fn, 0),
    localStorage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, String(v)) },
    fetch: (path, options) => fetch(new URL(path, base), options),
    socketIoMissing: !withSocketIo,
  };
  if (withSocketIo) context.io = (options) => io(base, { ...options, forceNew: true });
  context.window = context;
  vm.createContext(context);
  vm.runInContext(APP_JS, context, { filename: "app.js" });
  const select = (value) => {
    radios.find((r) => r.value === value).checked = true;
    els.modes.dispatch("change");
  };
  return { els, radios, select };
}

async function until(what, predicate) {
  const end = Date.now() + TIMEOUT_MS;
  while (Date.now() < end) {
    const value = predicate();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function post(name, message) {
  const response = await fetch(`${base}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, message }),
  });
  if (response.status !== 201) throw new Error(`POST answered ${response.status}`);
  return response.json();
}

const items = (page) => page.els.messages.children;
const hasText = (page, text) => items(page).some((li) => li.textContent.includes(text));

async function main() {
  const checks = [];
  await post("ann", "<b>not bold</b>");

  const page = fakePage({ withSocketIo: true });
  await until("history", () => hasText(page, "<b>not bold</b>"));
  checks.push("history rendered as text");
  await until("push connected", () => page.els.status.textContent.includes("push: Socket.IO connected"));
  await post("bob", "pushed");
  await until("pushed message", () => hasText(page, "pushed"));
  checks.push("push delivers");

  page.els.name.value = "me";
  page.els.message.value = "my own";
  page.els.send.dispatch("submit");
  const mine = await until("own message with round trip", () =>
    items(page).find((li) => li.classList.contains("mine") && /↩ \d+ ms via push/.test(li.textContent)));
  if (!mine.textContent.includes("my own")) throw new Error("own message text missing");
  checks.push("own message shows its round trip");

  page.select("longpoll");
  await until("long poll running", () => page.els.status.textContent.includes("long polling"));
  await post("bob", "long polled");
  await until("long polled message", () => hasText(page, "long polled"));
  checks.push("long poll delivers");

  page.els.interval.value = "0.5";
  page.select("poll");
  await until("polling running", () => page.els.status.textContent.includes("polling every 0.5 s"));
  await post("bob", "polled every half second");
  await until("polled message", () => hasText(page, "polled every half second"));
  checks.push("polling delivers");
  const ids = items(page).map((li) => Number(li.dataset.id));
  if (ids.some((id, i) => i > 0 && id <= ids[i - 1])) throw new Error(`messages out of order or repeated: ${ids}`);
  checks.push("no duplicates, in order");

  const fallback = fakePage({ withSocketIo: false });
  await until("fallback note", () => !fallback.els.note.hidden && fallback.els.note.textContent.includes("long polling"));
  const [push, longpoll] = fallback.radios;
  if (!push.disabled || !longpoll.checked) throw new Error("push should be disabled and long poll selected");
  await post("bob", "after fallback");
  await until("message in fallback mode", () => hasText(fallback, "after fallback"));
  checks.push("falls back to long polling without the client");

  console.log(JSON.stringify({ checks }));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`page test: ${error.stack || error.message}`);
    process.exit(1);
  },
);
