// pushpoll chat page: one list of messages, three ways to learn about new ones.
// Message text is only ever set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const list = $("messages");
const statusLine = $("status");
const note = $("note");

const shown = new Map(); // id -> <li>, kept sorted by id in the DOM
let cursor = 0; // highest id received so far
const sentAt = new Map(); // id -> performance.now() when this page sent it
const arrivedAt = new Map(); // id -> performance.now() when it came back
let mode = null; // the running receiver: { stop() }
let requests = 0;
let received = 0;

function showNote(text) {
  note.textContent = text;
  note.hidden = !text;
}

let statusLabel = "starting…";
function updateStatus(text) {
  statusLabel = text;
  refreshStatus();
}

// The counters change on every request and message, the label only when the mode's state does.
function refreshStatus() {
  statusLine.textContent = `${statusLabel} · ${requests} HTTP requests · ${received} messages received`;
}

function rttLabel(li, id) {
  const sent = sentAt.get(id);
  const back = arrivedAt.get(id);
  if (sent === undefined || back === undefined) return;
  li.classList.add("mine");
  const rtt = li.querySelector(".rtt") || li.querySelector(".meta").appendChild(document.createElement("span"));
  rtt.className = "rtt";
  rtt.textContent = ` ↩ ${Math.max(0, Math.round(back - sent))} ms via ${li.dataset.via}`;
}

// Adds one stored message {id, name, message, ts}; duplicates are ignored.
function addMessage(m, via) {
  if (typeof m !== "object" || m === null || !Number.isInteger(m.id) || shown.has(m.id)) return;
  arrivedAt.set(m.id, performance.now());
  received += 1;
  const li = document.createElement("li");
  li.dataset.via = via;
  const meta = li.appendChild(document.createElement("span"));
  meta.className = "meta";
  meta.textContent = Number.isFinite(m.ts) ? new Date(m.ts).toLocaleTimeString() : "";
  const who = li.appendChild(document.createElement("span"));
  who.className = "who";
  who.textContent = String(m.name);
  li.appendChild(document.createTextNode(String(m.message)));
  // Keep the list in id order even if a resync and a push interleave (rare: usually appends).
  let next = null;
  if (m.id < cursor) {
    for (const [id, el] of shown) if (id > m.id && (next === null || id < Number(next.dataset.id))) next = el;
  }
  li.dataset.id = String(m.id);
  list.insertBefore(li, next);
  shown.set(m.id, li);
  cursor = Math.max(cursor, m.id);
  rttLabel(li, m.id);
  refreshStatus();
  if (next === null) scrollToNewest();
}

let scrollPending = false;
// One scroll per frame, however many messages arrived in it.
function scrollToNewest() {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    list.lastElementChild?.scrollIntoView({ block: "nearest" });
  });
}

// GET /messages?since=cursor[&wait=…]; shows the missed-history signal when the server sends it.
async function fetchSince(via, wait, signal) {
  const query = `since=${cursor}` + (wait ? `&wait=${wait}` : "");
  requests += 1;
  refreshStatus();
  const response = await fetch(`/messages?${query}`, { cache: "no-store", signal });
  if (!response.ok) throw new Error(`GET /messages answered ${response.status}`);
  const missed = response.headers.get("x-pushpoll-missed");
  if (missed) showNote(`${missed} older messages are no longer kept by the server (it retains a bounded history).`);
  if (response.headers.get("x-pushpoll-latest-id") !== null) {
    // Our cursor is ahead of the server's log: it restarted and ids started over.
    resetView("The server restarted; showing its history from the start.");
    return fetchSince(via, wait, signal); // since=0 now, so this cannot loop
  }
  const messages = await response.json();
  for (const m of messages) addMessage(m, via);
  return messages.length;
}

function resetView(why) {
  shown.clear();
  sentAt.clear();
  arrivedAt.clear();
  list.textContent = "";
  cursor = 0;
  showNote(why);
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

// Repeats `step` until stopped; a failure waits 2 s before the next try.
function loop(label, step) {
  const abort = new AbortController();
  (async () => {
    while (!abort.signal.aborted) {
      try {
        updateStatus(label);
        await step(abort.signal);
      } catch (e) {
        if (abort.signal.aborted) break;
        updateStatus(`${label} – error: ${e.message}; retrying`);
        await sleep(2000, abort.signal);
      }
    }
  })();
  return { stop: () => abort.abort() };
}

function startLongPoll() {
  return loop("long polling (wait up to 30 s per request)", (signal) => fetchSince("long poll", "30s", signal));
}

function startPoll() {
  const seconds = Math.min(600, Math.max(0.5, Number($("interval").value) || 5));
  return loop(`polling every ${seconds} s`, async (signal) => {
    await fetchSince(`poll ${seconds}s`, null, signal);
    await sleep(seconds * 1000, signal);
  });
}

function startPush() {
  const socket = io({ transports: ["websocket", "polling"] });
  let stopped = false;
  socket.on("connect", () => {
    updateStatus(`push: Socket.IO connected over ${socket.io.engine.transport.name}`);
    // Catch up on anything sent while we were not connected.
    fetchSince("push", null).catch((e) => updateStatus(`push – resync failed: ${e.message}`));
  });
  socket.io.engine?.on?.("upgrade", () => updateStatus(`push: Socket.IO upgraded to ${socket.io.engine.transport.name}`));
  socket.on("message", (m) => addMessage(m, "push"));
  socket.on("disconnect", (reason) => {
    if (stopped) return;
    updateStatus(`push: disconnected (${reason}); reconnecting`);
    // The server disconnects sockets that could not keep up; reconnect and resync over HTTP.
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("connect_error", (e) => updateStatus(`push: cannot connect (${e.message}); retrying`));
  return { stop: () => { stopped = true; socket.disconnect(); } };
}

function pushAvailable() {
  return !window.socketIoMissing && typeof window.io === "function";
}

function switchMode(name) {
  if (mode) mode.stop();
  mode = name === "push" ? startPush() : name === "poll" ? startPoll() : startLongPoll();
}

function selectedMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

$("modes").addEventListener("change", () => switchMode(selectedMode()));

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  const message = $("message").value;
  if (!name || !message.trim()) return;
  localStorage.setItem("pushpoll-name", name);
  const started = performance.now();
  $("message").value = "";
  try {
    requests += 1;
    refreshStatus();
    const response = await fetch("/messages", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, message }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `answered ${response.status}`);
    sentAt.set(body.id, started);
    const li = shown.get(body.id);
    if (li) rttLabel(li, body.id); // it came back before the POST answered (push is that fast)
  } catch (e) {
    showNote(`Sending failed: ${e.message}`);
    $("message").value = message;
  }
});

$("name").value = localStorage.getItem("pushpoll-name") || "";

(async () => {
  if (!pushAvailable()) {
    const push = document.querySelector('input[value="push"]');
    push.disabled = true;
    document.querySelector('input[value="longpoll"]').checked = true;
    showNote("Push is unavailable: /socket.io/socket.io.js is not installed on the server (run `npm ci --prefix web`). Using long polling instead.");
  }
  try {
    await fetchSince("history", null);
  } catch (e) {
    updateStatus(`could not load history: ${e.message}`);
  }
  switchMode(selectedMode());
})();
