// The tutorial's chat server, as the tutorial writes it: Express 5 + Socket.IO 4, messages kept
// in an array, no ids and no cursor. GET /messages answers the whole list; POST /messages (JSON or
// form) stores the message, broadcasts it with io.emit('message', …) and answers 200.
// pushpoll's tests run the load generator against it to check compatibility; it listens on a free
// loopback port and prints `listening on http://127.0.0.1:PORT`.
'use strict';

const http = require('node:http');
const express = require('express');
const { Server } = require('socket.io');

const app = express();
const server = http.createServer(app);
const io = new Server(server);
const messages = [];

app.use(express.json());
app.use(express.urlencoded({ extended: false }));

app.get('/messages', (req, res) => {
  res.send(messages);
});

app.post('/messages', (req, res) => {
  messages.push(req.body);
  io.emit('message', req.body);
  res.sendStatus(200);
});

io.on('connection', () => {});

// Stop when the parent closes our stdin (the test harness's lifeline), or on SIGTERM.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
