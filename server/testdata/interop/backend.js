// A Node.js backend for plb's interop tests (server/interop_test.go):
// Node's own http module on two ports of 127.0.0.1, serving the files of
// the directory given as the first argument, plus /204, /chunked (two
// writes, 5 ms apart), /early (answers a POST before reading its body) and
// a WebSocket-style upgrade that echoes bytes. It prints its two ports on
// one line once both listen.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const root = process.argv[2];

function handler(req, res) {
  const url = req.url.split('?')[0];
  if (url === '/204') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (url === '/chunked') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('chunk-one,');
    setTimeout(() => res.end('chunk-two'), 5);
    return;
  }
  if (url === '/early') {
    // Answered at once: the body is left to Node to discard.
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('early');
    return;
  }
  if (req.method === 'POST' || req.method === 'PUT') {
    let n = 0;
    req.on('data', (d) => { n += d.length; });
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('got ' + n);
    });
    return;
  }
  const file = path.join(root, path.normalize(url));
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const ims = req.headers['if-modified-since'];
    if (ims && new Date(ims) >= mtime) {
      res.writeHead(304, { 'Last-Modified': mtime.toUTCString() });
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Length': st.size,
      'Last-Modified': mtime.toUTCString(),
      'Content-Type': 'application/octet-stream',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fs.createReadStream(file).pipe(res);
  });
}

function upgrade(req, socket) {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  socket.pipe(socket);
}

const ports = [];
for (let i = 0; i < 2; i++) {
  const s = http.createServer(handler);
  s.on('upgrade', upgrade);
  s.listen(0, '127.0.0.1', () => {
    ports.push(s.address().port);
    if (ports.length === 2) {
      console.log(ports.join(' '));
    }
  });
}
