// pushpoll race page: listens through every door of the server at once — Socket.IO over
// WebSocket, Socket.IO over engine.io polling, SSE, long poll, and polls every 1 s and 5 s — and
// for every message sent from this page draws when each door delivered it.
// Relative URLs only, so it works against whichever pushpoll server serves it. Message text is
// only ever set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";

const DOORS = [
  { key: "ws", label: "Socket.IO · WebSocket", short: "WebSocket", color: "#1f6feb" },
  { key: "eio", label: "Socket.IO · engine.io polling", short: "engine.io poll", color: "#8250df" },
  { key: "sse", label: "SSE (EventSource)", short: "SSE", color: "#1a7f37" },
  { key: "longpoll", label: "long poll", short: "long poll", color: "#bc4c00" },
  { key: "poll1", label: "poll every 1 s", short: "poll 1 s", color: "#cf222e", period: 1000 },
  { key: "poll5", label: "poll every 5 s", short: "poll 5 s", color: "#6e7781", period: 5000 },
];
// Per door: its state, HTTP requests made so far, delivery times of this page's messages, and the
// ids it has delivered (so a door that hands a message over twice counts it once).
const doors = Object.fromEntries(
  DOORS.map((d) => [d.key, { ...d, state: "connecting", detail: "starting", requests: 0, times: [], last: null, seen: new Set(), cursor: 0 }]),
);

const CHART_MESSAGES = 30; // messages shown in the chart
const LIST_MESSAGES = 12; // messages shown in the list below it
const KEEP_RACES = 500; // races kept for late arrivals (a 5 s poll is never that far behind)

const races = new Map(); // id -> { id, name, text, sentAt, arrivals: { door: ms } } for this page's messages
const early = new Map(); // id -> { door: performance.now() }: arrivals whose POST has not answered yet

// ---- bookkeeping ---------------------------------------------------------------------------

function count(key) {
  doors[key].requests += 1;
  scheduleRender();
}

function setState(key, state, detail) {
  const d = doors[key];
  d.state = state;
  d.detail = detail;
  scheduleRender();
}

function note(text) {
  $("note").textContent = text;
  $("note").hidden = !text;
}

const isMessage = (m) => typeof m === "object" && m !== null && Number.isInteger(m.id);

// A message arrived through door `key` (now).
function arrive(key, m) {
  const at = performance.now();
  if (!isMessage(m)) return;
  const d = doors[key];
  if (d.seen.has(m.id)) return;
  d.seen.add(m.id);
  if (d.seen.size > 4 * KEEP_RACES) {
    for (const id of d.seen) {
      d.seen.delete(id);
      if (d.seen.size <= 2 * KEEP_RACES) break;
    }
  }
  const race = races.get(m.id);
  if (race) {
    record(race, key, at);
  } else {
    // Not (yet) known as ours: the POST may still be on its way back. Others' messages end here.
    let arrivals = early.get(m.id);
    if (!arrivals) {
      arrivals = {};
      early.set(m.id, arrivals);
      if (early.size > KEEP_RACES) early.delete(early.keys().next().value);
    }
    arrivals[key] = at;
  }
  scheduleRender();
}

function record(race, key, at) {
  if (race.arrivals[key] !== undefined) return;
  const ms = Math.max(0, at - race.sentAt);
  race.arrivals[key] = ms;
  const d = doors[key];
  d.last = ms;
  d.times.push(ms);
}

async function send(name, text) {
  const sentAt = performance.now();
  const response = await fetch("/messages", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, message: text }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `POST /messages answered ${response.status}`);
  if (!isMessage(body)) throw new Error("POST /messages answered without a message id");
  const race = { id: body.id, name: String(body.name), text: String(body.message), sentAt, arrivals: {} };
  races.set(race.id, race);
  if (races.size > KEEP_RACES) races.delete(races.keys().next().value);
  const arrived = early.get(race.id);
  if (arrived) {
    early.delete(race.id);
    for (const [key, at] of Object.entries(arrived)) record(race, key, at);
  }
  scheduleRender();
}

function p50(times) {
  if (times.length === 0) return null;
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 2) - 1]; // nearest rank
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

// ---- the doors ------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// GET /messages?since=cursor[&wait=…] for one door; follows the server across a restart.
async function pollOnce(key, extra) {
  const d = doors[key];
  count(key);
  const response = await fetch(`/messages?since=${d.cursor}${extra}`, { cache: "no-store" });
  if (!response.ok) throw new Error(`GET /messages answered ${response.status}`);
  const latest = response.headers.get("x-pushpoll-latest-id");
  if (latest !== null) {
    // The cursor is ahead of the log: the server restarted and its ids started over.
    d.cursor = Number(latest) || 0;
    note("The server restarted (its message ids started over); the doors follow its new log.");
    return;
  }
  const messages = await response.json();
  for (const m of Array.isArray(messages) ? messages : []) {
    arrive(key, m);
    if (isMessage(m)) d.cursor = Math.max(d.cursor, m.id);
  }
}

function startLongPoll() {
  (async () => {
    for (;;) {
      try {
        setState("longpoll", "live", "waiting (up to 30 s per request)");
        await pollOnce("longpoll", "&wait=30s");
      } catch (e) {
        setState("longpoll", "down", `error: ${e.message}; retrying in 2 s`);
        await sleep(2000);
      }
    }
  })();
}

// Polls on a fixed schedule (a tick missed while a request was slow is skipped, not bunched).
function startPolling(key) {
  const period = doors[key].period;
  (async () => {
    let next = performance.now();
    for (;;) {
      try {
        await pollOnce(key, "");
        setState(key, "live", `polling every ${period / 1000} s`);
      } catch (e) {
        setState(key, "down", `error: ${e.message}; retrying`);
      }
      const now = performance.now();
      do next += period; while (next <= now);
      await sleep(next - now);
    }
  })();
}

function startSse() {
  count("sse");
  const source = new EventSource("/events");
  source.addEventListener("open", () => setState("sse", "live", "stream open"));
  source.addEventListener("message", (event) => {
    try {
      arrive("sse", JSON.parse(event.data));
    } catch {
      // not a message: ignore
    }
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CONNECTING) {
      count("sse"); // the browser reconnects with a new request (sending Last-Event-ID)
      setState("sse", "down", "stream lost; the browser reconnects");
    } else {
      setState("sse", "down", "stream closed by the server");
    }
  });
}

function startSocketIo(key, options) {
  if (window.socketIoMissing || typeof window.io !== "function") {
    setState(key, "unavailable", "unavailable: /socket.io/socket.io.js is not installed on the server (npm ci --prefix web)");
    return;
  }
  // Each door has its own connection (forceNew), so the two transports race independently.
  const socket = io({ ...options, forceNew: true });
  if (key === "ws") {
    // Over WebSocket the only HTTP request is the upgrade: one per connection attempt.
    count(key);
    socket.io.on("reconnect_attempt", () => count(key));
  }
  socket.on("connect", () => setState(key, "live", `connected over ${socket.io.engine.transport.name}`));
  socket.on("message", (m) => arrive(key, m));
  socket.on("disconnect", (reason) => {
    setState(key, "down", `disconnected (${reason}); reconnecting`);
    if (reason === "io server disconnect") {
      // The server closed this socket on purpose (shutdown, full queue): Socket.IO does not retry
      // by itself in that case.
      if (key === "ws") count(key);
      socket.connect();
    }
  });
  socket.on("connect_error", (e) => setState(key, "down", `cannot connect (${e.message}); retrying`));
}

// engine.io polling runs on XMLHttpRequest (every poll and every send is one request); no other
// door of this page uses it, so counting Socket.IO XHRs counts that door's requests.
const xhrOpen = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function open(method, url, ...rest) {
  if (String(url).includes("/socket.io/")) count("eio");
  return xhrOpen.call(this, method, url, ...rest);
};

// The newest id now, so the polling doors start with new messages rather than the history.
async function newestId() {
  for (;;) {
    try {
      const response = await fetch(`/messages?since=${Number.MAX_SAFE_INTEGER}`, { cache: "no-store" });
      const latest = response.headers.get("x-pushpoll-latest-id");
      if (latest !== null) return Number(latest) || 0;
      const all = await (await fetch("/messages", { cache: "no-store" })).json();
      return all.reduce((max, m) => (isMessage(m) ? Math.max(max, m.id) : max), 0);
    } catch (e) {
      note(`Cannot reach the server (${e.message}); retrying.`);
      await sleep(2000);
    }
  }
}

// ---- drawing --------------------------------------------------------------------------------

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    renderTable();
    renderChart();
    renderList();
  });
}

const rows = {};
function buildTable() {
  const body = document.querySelector("#doors tbody");
  for (const d of DOORS) {
    const tr = body.appendChild(document.createElement("tr"));
    tr.dataset.door = d.key;
    const name = tr.appendChild(document.createElement("th"));
    name.scope = "row";
    const swatch = name.appendChild(document.createElement("span"));
    swatch.className = "swatch";
    swatch.style.setProperty("--door", d.color);
    name.appendChild(document.createTextNode(d.label));
    const cell = (cls) => {
      const td = tr.appendChild(document.createElement("td"));
      td.className = cls;
      return td;
    };
    rows[d.key] = { tr, state: cell("state"), delivered: cell("delivered"), last: cell("last"), p50: cell("p50"), requests: cell("requests") };
  }
}

function renderTable() {
  for (const d of Object.values(doors)) {
    const row = rows[d.key];
    row.tr.dataset.state = d.state;
    row.state.textContent = d.detail;
    row.delivered.textContent = String(d.times.length);
    row.last.textContent = formatMs(d.last);
    const median = p50(d.times);
    row.p50.textContent = formatMs(median);
    row.p50.dataset.ms = median === null ? "" : median.toFixed(1);
    row.requests.textContent = String(d.requests);
  }
}

function svg(parent, tag, attributes = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, String(value));
  return parent.appendChild(el);
}

const CHART = { width: 760, height: 320, left: 60, right: 16, top: 14, bottom: 40, minMs: 1, maxMs: 10_000 };

function renderChart() {
  const chart = $("chart");
  chart.replaceChildren();
  const { width, height, left, right, top, bottom, minMs, maxMs } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const decades = Math.log10(maxMs / minMs);
  const y = (ms) => top + plotH * (1 - Math.log10(Math.min(maxMs, Math.max(minMs, ms)) / minMs) / decades);
  const shown = [...races.values()].slice(-CHART_MESSAGES);
  const slots = Math.max(10, shown.length); // a few messages are spread out, 30 fill the width
  const x = (i) => left + ((i + 0.5) * plotW) / slots;

  for (const [ms, label] of [[1, "1 ms"], [10, "10 ms"], [100, "100 ms"], [1000, "1 s"], [10_000, "10 s"]]) {
    svg(chart, "line", { x1: left, x2: width - right, y1: y(ms), y2: y(ms), class: "grid" });
    svg(chart, "text", { x: left - 6, y: y(ms) + 4, class: "tick", "text-anchor": "end" }).textContent = label;
  }
  const axis = svg(chart, "text", { x: left + plotW / 2, y: height - 8, class: "axis", "text-anchor": "middle" });
  axis.textContent = "this page's messages, oldest → newest";

  if (shown.length === 0) {
    svg(chart, "text", { x: left + plotW / 2, y: top + plotH / 2, class: "empty", "text-anchor": "middle" }).textContent =
      "Send a message (or one every second) to start the race";
    return;
  }
  shown.forEach((race, i) => {
    if (i % 5 === 0 || i === shown.length - 1) {
      svg(chart, "text", { x: x(i), y: top + plotH + 16, class: "tick", "text-anchor": "middle" }).textContent = `#${race.id}`;
    }
  });
  for (const d of DOORS) {
    const points = [];
    shown.forEach((race, i) => {
      const ms = race.arrivals[d.key];
      if (ms !== undefined) points.push([x(i), y(ms), ms, race.id]);
    });
    if (points.length > 1) {
      svg(chart, "polyline", {
        points: points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" "),
        class: "series",
        stroke: d.color,
      });
    }
    for (const [px, py, ms, id] of points) {
      const dot = svg(chart, "circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: 4, fill: d.color, "data-door": d.key, "data-id": id });
      svg(dot, "title").textContent = `#${id} via ${d.label}: ${formatMs(ms)}`;
    }
  }
}

function renderList() {
  const list = $("races");
  const shown = [...races.values()].slice(-LIST_MESSAGES).reverse();
  list.replaceChildren();
  for (const race of shown) {
    const li = list.appendChild(document.createElement("li"));
    li.dataset.id = String(race.id);
    li.value = race.id;
    const who = li.appendChild(document.createElement("span"));
    who.className = "who";
    who.textContent = race.name;
    const text = li.appendChild(document.createElement("span"));
    text.className = "text";
    text.textContent = race.text;
    const times = li.appendChild(document.createElement("span"));
    times.className = "times";
    const ranked = DOORS.map((d) => [d, race.arrivals[d.key]]).sort(([, a], [, b]) => (a ?? Infinity) - (b ?? Infinity));
    ranked.forEach(([d, ms], rank) => {
      const chip = times.appendChild(document.createElement("span"));
      chip.className = ms === undefined ? "chip pending" : rank === 0 ? "chip first" : "chip";
      chip.style.setProperty("--door", d.color);
      chip.textContent = `${d.short} ${ms === undefined ? "…" : formatMs(ms)}`;
    });
  }
}

// ---- sending --------------------------------------------------------------------------------

function senderName() {
  return $("name").value.trim() || "racer";
}

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text.trim()) return;
  $("message").value = "";
  try {
    await send(senderName(), text);
  } catch (e) {
    note(`Sending failed: ${e.message}`);
    $("message").value = text;
  }
});

let autoTimer = null;
let autoCount = 0;
$("auto").addEventListener("click", () => {
  const button = $("auto");
  if (autoTimer !== null) {
    clearInterval(autoTimer);
    autoTimer = null;
    button.textContent = "Send one every second";
    button.setAttribute("aria-pressed", "false");
    return;
  }
  const tick = () => {
    autoCount += 1;
    send(senderName(), `race ${autoCount}`).catch((e) => note(`Sending failed: ${e.message}`));
  };
  tick();
  autoTimer = setInterval(tick, 1000);
  button.textContent = "Stop sending";
  button.setAttribute("aria-pressed", "true");
});

// ---- start ----------------------------------------------------------------------------------

buildTable();
scheduleRender();
startSocketIo("ws", { transports: ["websocket"] });
startSocketIo("eio", { transports: ["polling"], upgrade: false });
startSse();
(async () => {
  const newest = await newestId();
  for (const key of ["longpoll", "poll1", "poll5"]) doors[key].cursor = newest;
  startLongPoll();
  startPolling("poll1");
  startPolling("poll5");
})();
