// The chat page (/) and the race page (/race) in a real headless Chromium, driven with the pinned
// playwright-core against the system's Chromium (no browser download).
//
// Usage: node web/test/browser.mjs --url http://127.0.0.1:PORT --no-client-url http://127.0.0.1:PORT2
//          [--screenshots DIR]
//   --url            a chat-server with the socket.io client installed; it is restarted mid-run
//   --no-client-url  a chat-server started with a --web-dir that has no node_modules
//   PUSHPOLL_CHROMIUM  the Chromium (or Chrome) executable; server/tests/browser.rs finds it
// To restart the server at --url on the same port the script prints the line RESTART and waits
// (30 s at most) for RESTARTED on its standard input: server/tests/browser.rs does that. The last
// line on stdout is a JSON summary; the exit code is non-zero on any failure.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    "no-client-url": { type: "string" },
    screenshots: { type: "string" },
  },
});
if (!args.url || !args["no-client-url"] || !process.env.PUSHPOLL_CHROMIUM) {
  console.error("usage: PUSHPOLL_CHROMIUM=CHROMIUM node browser.mjs --url URL --no-client-url URL [--screenshots DIR]");
  process.exit(2);
}
const WAIT_MS = 15_000; // bound on every single wait
const XSS = "<img src=x onerror=alert(1)>";

const checks = [];
const summary = { checks, chat: {}, race: {}, screenshots: [] };
const dialogs = [];
const pageErrors = [];

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

// ---- the driver: restarts on request --------------------------------------------------------

const stdinLines = [];
createInterface({ input: process.stdin }).on("line", (line) => stdinLines.push(line.trim()));

async function askDriver(request, answer) {
  console.log(request);
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const i = stdinLines.indexOf(answer);
    if (i >= 0) {
      stdinLines.splice(i, 1);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${answer} on stdin within 30 s after ${request} (run this script from server/tests/browser.rs)`);
}

// ---- helpers --------------------------------------------------------------------------------

let browser;

async function post(base, name, message) {
  const response = await fetch(`${base}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, message }),
  });
  check(response.status === 201, `POST /messages answered ${response.status}`);
  return response.json();
}

// A page in a context of its own (its own storage, its own offline switch).
async function open(url, viewport = { width: 820, height: 640 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()} "${dialog.message()}" on ${url}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => pageErrors.push(`${url}: ${error.message}`));
  // Records when each chat message element appeared, on a clock shared by every page.
  await page.addInitScript(() => {
    window.__shown = [];
    new MutationObserver((records) => {
      const at = performance.timeOrigin + performance.now();
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.nodeName === "LI" && node.parentElement?.id === "messages") {
            window.__shown.push({ text: node.textContent, at });
          }
        }
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(url);
  return page;
}

async function describe(page) {
  return page
    .evaluate(() =>
      ["status", "note"].map((id) => document.getElementById(id)?.textContent ?? "").filter(Boolean).join(" | ") ||
      [...document.querySelectorAll("#doors tbody tr")].map((tr) => `${tr.dataset.door}: ${tr.textContent}`).join(" | "))
    .catch((e) => `(page unreadable: ${e.message})`);
}

async function waitIn(page, what, predicate, arg) {
  try {
    const handle = await page.waitForFunction(predicate, arg, { polling: 50, timeout: WAIT_MS });
    return handle.jsonValue();
  } catch (e) {
    throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what} on ${page.url()}; the page says: ${await describe(page)} (${e.message.split("\n")[0]})`);
  }
}

const statusHas = (page, what, text) =>
  waitIn(page, what, (t) => document.getElementById("status").textContent.includes(t), text);

const hasMessage = (page, text) =>
  waitIn(page, `the message "${text}"`, (t) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent.includes(t)), text);

const shows = (page, text) =>
  page.evaluate((t) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent.includes(t)), text);

const shownAt = (page, text) => page.evaluate((t) => window.__shown.find((s) => s.text.includes(t))?.at ?? null, text);

// The "↩ N ms via MODE" label of one of the page's own messages.
const roundTrip = (page, text) =>
  waitIn(page, `the round trip of "${text}"`, (t) => {
    const li = [...document.querySelectorAll("#messages li.mine")].find((l) => l.textContent.includes(t));
    return li?.querySelector(".rtt")?.textContent ?? false;
  }, text);

async function type(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

async function idsInOrder(page, what) {
  const ids = await page.evaluate(() => [...document.querySelectorAll("#messages li")].map((li) => Number(li.dataset.id)));
  check(ids.length > 0 && ids.every((id, i) => i === 0 || id > ids[i - 1]), `${what}: messages in id order, each once (${ids})`);
}

async function screenshot(page, name, fullPage = false) {
  if (!args.screenshots) return;
  mkdirSync(args.screenshots, { recursive: true });
  await page.screenshot({ path: join(args.screenshots, name), fullPage });
  summary.screenshots.push(name);
}

// ---- scenarios ------------------------------------------------------------------------------

// Two pages, push and poll every 2 s, see each other's messages; the push page always first.
async function chat(base) {
  const history = "history: sent before the pages opened";
  await post(base, "ann", history);
  const push = await open(`${base}/`);
  await statusHas(push, "the push page to connect", "push: Socket.IO connected");
  await hasMessage(push, history);
  const poll = await open(`${base}/`);
  await poll.fill("#interval", "2");
  await poll.check('input[value="poll"]');
  await statusHas(poll, "the poll page to poll every 2 s", "polling every 2 s");
  await push.fill("#name", "ann");
  await poll.fill("#name", "bob");
  checks.push("history shows on opening");

  // Each message is sent right after the poll page's poll answered, so it waits ~2 s for the next.
  const afterPoll = () =>
    poll.waitForResponse((r) => r.url().includes("/messages?since=") && r.request().method() === "GET");
  const lead = {};
  for (const [sender, text] of [[poll, "hello from the polling page"], [push, XSS]]) {
    await afterPoll();
    await type(sender, text);
    await hasMessage(push, text);
    await hasMessage(poll, text);
    const [atPush, atPoll] = [await shownAt(push, text), await shownAt(poll, text)];
    check(atPush !== null && atPoll !== null && atPush < atPoll, `the push page shows "${text}" first (${atPush} vs ${atPoll})`);
    lead[sender === push ? "push_page_message" : "poll_page_message"] = Math.round(atPoll - atPush);
  }
  summary.chat.push_page_ahead_ms = lead;
  checks.push("push and poll pages see each other's messages, push first");

  const rttPoll = await roundTrip(poll, "hello from the polling page");
  const rttPush = await roundTrip(push, XSS);
  check(/^ ↩ \d+ ms via poll 2s$/.test(rttPoll), `poll page round trip label: ${rttPoll}`);
  check(/^ ↩ \d+ ms via push$/.test(rttPush), `push page round trip label: ${rttPush}`);
  summary.chat.round_trips = { poll: rttPoll.trim(), push: rttPush.trim() };
  checks.push("each page shows its round trip");

  await new Promise((r) => setTimeout(r, 500)); // time for an injected onerror to fire
  for (const page of [push, poll]) {
    const imgs = await page.evaluate(() => document.querySelectorAll("#messages img").length);
    check(imgs === 0, `no <img> element made from message text (found ${imgs})`);
    await idsInOrder(page, "chat");
    await waitIn(page, "the status line to count every message shown", () =>
      document.getElementById("status").textContent.endsWith(` ${document.querySelectorAll("#messages li").length} messages received`));
  }
  check(dialogs.length === 0, `no dialog opened: ${dialogs.join("; ")}`);
  checks.push("an <img onerror> message shows as text and runs nothing");

  await screenshot(push, "chat-push.png");
  await screenshot(poll, "chat-poll.png");
  return { push, poll };
}

const doorStats = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll("#doors tbody tr")].map((tr) => [
        tr.dataset.door,
        {
          state: tr.dataset.state,
          delivered: Number(tr.querySelector(".delivered").textContent),
          p50_ms: tr.querySelector(".p50").dataset.ms === "" ? null : Number(tr.querySelector(".p50").dataset.ms),
          requests: Number(tr.querySelector(".requests").textContent),
          points: document.querySelectorAll(`#chart circle[data-door="${tr.dataset.door}"]`).length,
        },
      ]),
    ),
  );

const DOOR_KEYS = ["ws", "eio", "sse", "longpoll", "poll1", "poll5"];

// The race page: every door delivers every message; chart, p50s and request counters update.
async function race(base) {
  const page = await open(`${base}/race`, { width: 1000, height: 1000 });
  await waitIn(page, "all six doors of the race page to be live", (n) => {
    const rows = [...document.querySelectorAll("#doors tbody tr")];
    return rows.length === n && rows.every((tr) => tr.dataset.state === "live");
  }, DOOR_KEYS.length);
  const before = await doorStats(page);
  check(DOOR_KEYS.every((k) => before[k] && before[k].delivered === 0 && before[k].points === 0), `an idle race page: ${JSON.stringify(before)}`);
  checks.push("race: every door connects");

  // The chart's points are sampled all along: they must grow in steps as the doors deliver.
  const totalPoints = (s) => DOOR_KEYS.reduce((sum, k) => sum + s[k].points, 0);
  const samples = [];
  let sampling = true;
  const sampler = (async () => {
    for (let i = 0; sampling && i < 600; i++) {
      samples.push(totalPoints(await doorStats(page)));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await type(page, XSS);
  await page.click("#auto"); // one now, then one every second
  await waitIn(page, "four messages sent", () => document.querySelectorAll("#races li").length >= 4);
  await page.click("#auto"); // stop
  // Every door delivers every message sent (the 5 s poll last, within one period).
  const end = Date.now() + WAIT_MS;
  let sent = 0;
  for (;;) {
    const [stats, n] = await Promise.all([doorStats(page), page.evaluate(() => document.querySelectorAll("#races li").length)]);
    if (DOOR_KEYS.every((k) => stats[k].delivered >= n && stats[k].points >= n)) {
      sent = n;
      break;
    }
    check(Date.now() < end, `every door delivers all ${n} messages within ${WAIT_MS} ms: ${JSON.stringify(stats)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500)); // a late send or a duplicate would show now
  sampling = false;
  await sampler;
  const after = await doorStats(page);
  const sentAfter = await page.evaluate(() => document.querySelectorAll("#races li").length);
  check(sentAfter === sent, `no message sent after the stop (${sent} then ${sentAfter})`);
  for (const k of DOOR_KEYS) {
    const d = after[k];
    check(d.delivered === sent && d.points === sent, `${k} delivered all ${sent} messages once, and the chart has a point for each: ${JSON.stringify(d)}`);
    check(d.p50_ms !== null && d.p50_ms >= 0, `${k} shows a p50: ${JSON.stringify(d)}`);
  }
  checks.push("race: every door delivers every message, once");

  // Every delivering poll, long poll and engine.io poll is a request made after the first send.
  for (const k of ["eio", "longpoll", "poll1", "poll5"]) {
    check(after[k].requests > before[k].requests, `${k} requests grow: ${before[k].requests} -> ${after[k].requests}`);
  }
  check(after.poll1.requests >= 3 && after.poll5.requests >= 2 && after.ws.requests >= 1 && after.sse.requests >= 1,
    `request counters: ${JSON.stringify(after)}`);
  const steps = new Set(samples).size;
  check(samples.every((v, i) => i === 0 || v >= samples[i - 1]) && steps >= 3 && samples.at(-1) === DOOR_KEYS.length * sent,
    `the chart grows in steps as doors deliver: ${samples}`);
  summary.race.chart_point_counts_seen = [...new Set(samples)];
  checks.push("race: chart, p50 and request counters update live");

  check(after.ws.p50_ms < after.poll5.p50_ms && after.sse.p50_ms < after.poll5.p50_ms,
    `push beats the 5 s poll at p50: ${JSON.stringify(after)}`);
  checks.push("race: push beats polling");

  const xss = await page.evaluate((t) => ({
    imgs: document.querySelectorAll("#races img, #chart image").length,
    shown: [...document.querySelectorAll("#races li .text")].some((el) => el.textContent === t),
  }), XSS);
  check(xss.imgs === 0 && xss.shown && dialogs.length === 0, `race page shows ${XSS} as text: ${JSON.stringify(xss)} ${dialogs}`);
  checks.push("race: message text stays text");

  Object.assign(summary.race, { messages: sent, doors: after });
  await screenshot(page, "race.png", true);
  await page.context().close();
}

// A server without the socket.io client: the chat page says so and long-polls; the race page's
// Socket.IO doors say so and the others run.
async function noClient(base) {
  const page = await open(`${base}/`);
  await waitIn(page, "the note that push is unavailable", () => {
    const note = document.getElementById("note");
    return !note.hidden && note.textContent.includes("Push is unavailable");
  });
  check(await page.isDisabled('input[value="push"]'), "push disabled without the client");
  check(await page.isChecked('input[value="longpoll"]'), "long poll chosen without the client");
  await statusHas(page, "long polling", "long polling");
  await page.fill("#name", "dan");
  await type(page, "sent without the socket.io client");
  const rtt = await roundTrip(page, "sent without the socket.io client");
  check(/via long poll$/.test(rtt), `round trip via long poll: ${rtt}`);
  await screenshot(page, "chat-no-client.png");
  await page.context().close();
  checks.push("without the socket.io client the chat page says so and long-polls");

  const racePage = await open(`${base}/race`, { width: 1000, height: 800 });
  await waitIn(racePage, "the race page without the socket.io client", () => {
    const state = (k) => document.querySelector(`#doors tr[data-door="${k}"]`)?.dataset.state;
    return ["ws", "eio"].every((k) => state(k) === "unavailable") && ["sse", "longpoll", "poll1", "poll5"].every((k) => state(k) === "live");
  });
  await racePage.context().close();
  checks.push("without the socket.io client the race page says so and races the other doors");
}

// The pages opened by chat() stay open across a server restart. While they cannot reach it the
// restarted server gets a message; once they can, they show it (and say the server restarted).
async function restart(base, { push, poll }) {
  await poll.check('input[value="longpoll"]');
  await statusHas(poll, "the second page to long-poll", "long polling");
  const missed = "posted while the pages could not reach the server";
  for (const page of [push, poll]) await page.context().setOffline(true);
  await askDriver("RESTART", "RESTARTED");
  const posted = await post(base, "carol", missed);
  check(posted.id === 1, `a restarted server starts its ids over (got id ${posted.id})`);
  await new Promise((r) => setTimeout(r, 300));
  for (const page of [push, poll]) check(!(await shows(page, missed)), "an offline page cannot have the message yet");
  for (const page of [push, poll]) await page.context().setOffline(false);
  for (const page of [push, poll]) {
    await hasMessage(page, missed);
    await waitIn(page, "the note that the server restarted", () => document.getElementById("note").textContent.includes("server restarted"));
    await idsInOrder(page, "after the restart");
  }
  await statusHas(push, "the push page to reconnect", "push: Socket.IO connected");
  await type(push, "live after the restart");
  check(/via push$/.test(await roundTrip(push, "live after the restart")), "push works after the restart");
  await hasMessage(poll, "live after the restart");
  await screenshot(push, "chat-after-restart.png");
  checks.push("pages left open across a server restart reconnect and show what they missed");
}

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.PUSHPOLL_CHROMIUM,
    headless: true,
    timeout: 30_000,
    // Playwright adds --headless and a fresh --user-data-dir of its own. The network flags keep
    // Chromium from calling out (a closed network refuses it, slowly).
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  summary.browser = browser.version();
  try {
    const pages = await chat(args.url);
    await race(args.url);
    await noClient(args["no-client-url"]);
    await restart(args.url, pages);
    check(pageErrors.length === 0, `no uncaught error in any page: ${pageErrors.join("; ")}`);
    check(dialogs.length === 0, `no dialog opened: ${dialogs.join("; ")}`);
    checks.push("no page threw or opened a dialog");
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`browser test: ${error.stack || error.message}`);
    process.exit(1);
  },
);
