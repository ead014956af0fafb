// Compatibility check with the official Socket.IO client (the pinned socket.io-client).
// Usage: node web/test/official-client.mjs http://127.0.0.1:PORT
// For each transport (websocket, polling) one client connects; then an HTTP POST must reach both
// as a `message` broadcast, and each client emits `message` {name, message}, which both clients
// must receive back. Prints one JSON summary line on stdout; exits non-zero on any failure.
import { io } from "socket.io-client";

const base = process.argv[2];
if (!base) {
  console.error("usage: node official-client.mjs http://HOST:PORT");
  process.exit(2);
}
const TRANSPORTS = ["websocket", "polling"];
const TIMEOUT_MS = 10_000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(transport) {
  // No upgrade: each client must stay on the transport under test.
  const socket = io(base, { transports: [transport], upgrade: false, reconnection: false, forceNew: true });
  const received = [];
  const waiters = [];
  socket.on("message", (message) => {
    received.push(message);
    for (const w of [...waiters]) w();
  });
  const until = (predicate, what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const found = received.find(predicate);
          if (found) {
            waiters.splice(waiters.indexOf(check), 1);
            resolve(found);
          }
        };
        waiters.push(check);
        check();
      }),
      `${what} on ${transport}`,
    );
  const connected = withTimeout(
    new Promise((resolve, reject) => {
      socket.on("connect", resolve);
      socket.on("connect_error", (e) => reject(new Error(`${transport}: connect_error ${e.message}`)));
    }),
    `connect over ${transport}`,
  );
  return { transport, socket, received, until, connected };
}

async function main() {
  const clients = TRANSPORTS.map(connect);
  await Promise.all(clients.map((c) => c.connected));
  for (const c of clients) {
    const used = c.socket.io.engine.transport.name;
    if (used !== c.transport) throw new Error(`asked for ${c.transport}, connected with ${used}`);
  }

  const response = await fetch(`${base}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "http", message: "broadcast to the official client" }),
  });
  if (response.status !== 201) throw new Error(`POST /messages answered ${response.status}`);
  const posted = await response.json();
  for (const c of clients) {
    const got = await c.until((m) => m.id === posted.id, "the HTTP broadcast");
    if (got.message !== posted.message || got.name !== posted.name) {
      throw new Error(`${c.transport} got ${JSON.stringify(got)}, expected ${JSON.stringify(posted)}`);
    }
  }

  const emitted = clients.map((c) => ({ name: `node-${c.transport}`, message: `emitted over ${c.transport}` }));
  clients.forEach((c, i) => c.socket.emit("message", emitted[i]));
  for (const c of clients) {
    for (const e of emitted) {
      await c.until((m) => m.name === e.name && m.message === e.message, `the emit of ${e.name}`);
    }
  }

  const summary = {
    transports: Object.fromEntries(clients.map((c) => [c.transport, c.received.map((m) => m.id)])),
    emitted,
  };
  clients.forEach((c) => c.socket.disconnect());
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`official-client: ${error.message}`);
    process.exit(1);
  },
);
