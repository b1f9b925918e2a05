// MailDev behind a same-origin guard: MailDev's API allows any Origin with credentials, so any page the
// developer visits could read the caught reset links (docs/decisions.md). This process listens on 1080,
// runs MailDev (its UI on 127.0.0.1:1081) and forwards a request or WebSocket upgrade only when Host is
// the loopback (a rebound DNS name is refused) and Origin, if sent, is the UI's own: http://<Host>.
// MailDev's Access-Control-* headers are dropped from every answer.
import http from 'node:http';
import net from 'node:net';

const LISTEN_PORT = 1080;
const MAILDEV_PORT = 1081;
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

function refusal(request) {
  const host = request.headers.host ?? '';
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  if (!LOOPBACK_NAMES.has(hostname)) return `Host ${JSON.stringify(host)} is not this machine's loopback`;
  const origin = request.headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `http://${host.toLowerCase()}`) {
    return `Origin ${JSON.stringify(origin)} is not the mail catcher's own`;
  }
  return null;
}

function withoutCors(headers) {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => !name.toLowerCase().startsWith('access-control-')),
  );
}

const server = http.createServer((request, response) => {
  const refused = refusal(request);
  if (refused) {
    response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end(`${refused}\n`);
    return;
  }
  const upstream = http.request(
    { host: '127.0.0.1', port: MAILDEV_PORT, method: request.method, path: request.url, headers: request.headers },
    (answer) => {
      response.writeHead(answer.statusCode, withoutCors(answer.headers));
      answer.pipe(response);
    },
  );
  upstream.on('error', () => response.headersSent ? response.destroy() : response.writeHead(502).end());
  request.pipe(upstream);
});

// The UI's live updates (socket.io): a WebSocket is not subject to CORS, so the same check applies.
server.on('upgrade', (request, socket, head) => {
  if (refusal(request)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const upstream = net.connect(MAILDEV_PORT, '127.0.0.1', () => {
    const lines = [`${request.method} ${request.url} HTTP/1.1`];
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
});

server.listen(LISTEN_PORT, '0.0.0.0', () => {
  console.info(`Same-origin guard on port ${LISTEN_PORT}, in front of MailDev's UI (below) on ${MAILDEV_PORT}`);
});
// MailDev in this process: it reads process.argv (the CMD's flags) and handles the stop signals.
await import('./node_modules/maildev/dist/bin/maildev.js');
