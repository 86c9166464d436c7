// Raw-socket HTTP/1.1 for the suites that test the wire itself (framing, pipelining, isolation):
// what fetch/http.Agent would normalise away (several responses in one stream, bytes after a
// close, stray bytes before a status line) stays visible here.
//
// The client side never half-closes (no socket.end()): the server treats EOF from a client as the
// client going away (as nginx does) and may drop the answer. Connections end with destroy().
import net from 'node:net';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A connection that records everything the server sends.
//   conn.data()               the bytes received so far (one Buffer)
//   conn.write(bytes)         string or Buffer; resolves once handed to the kernel
//   conn.waitFor(pred, ms)    resolves true once pred(data) holds, false when the server closed
//                             or ms passed first
//   conn.closed               a promise resolved when the socket closes (either side)
//   conn.closedByServer       true once the server closed (or reset) the connection
//   conn.destroy()
export async function connect(port, { host = '127.0.0.1' } = {}) {
  const socket = net.connect(port, host);
  socket.setNoDelay(true);
  // Received bytes, appended into a buffer that doubles when full (data() is a view, no copy).
  let store = Buffer.allocUnsafe(16 * 1024);
  let size = 0;
  const waiters = new Set();
  const conn = {
    socket,
    closedByServer: false,
    destroyedByClient: false,
    error: null,
    data() {
      return store.subarray(0, size);
    },
    get bytes() {
      return size;
    },
    write(bytes) {
      return new Promise((resolve) => {
        if (socket.destroyed) return resolve(false);
        socket.write(bytes, () => resolve(true));
      });
    },
    waitFor(predicate, timeoutMs = 3000) {
      if (predicate(conn.data())) return Promise.resolve(true);
      if (socket.destroyed) return Promise.resolve(false);
      return new Promise((resolve) => {
        const w = {
          check: () => {
            if (predicate(conn.data())) finish(true);
          },
          gone: () => finish(false),
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        function finish(v) {
          clearTimeout(timer);
          waiters.delete(w);
          resolve(v);
        }
        waiters.add(w);
      });
    },
    destroy() {
      if (!socket.destroyed) conn.destroyedByClient = true;
      socket.destroy();
    },
  };
  conn.closed = new Promise((resolve) => socket.on('close', resolve));
  socket.on('data', (d) => {
    if (size + d.length > store.length) {
      const bigger = Buffer.allocUnsafe(Math.max(store.length * 2, size + d.length));
      store.copy(bigger, 0, 0, size);
      store = bigger;
    }
    d.copy(store, size);
    size += d.length;
    for (const w of [...waiters]) w.check();
  });
  // 'end' is the server's FIN; a reset arrives as 'error' (ECONNRESET). Either way the server
  // ended the connection, unless we destroyed it ourselves.
  socket.on('end', () => {
    conn.closedByServer = true;
    socket.destroy();
  });
  socket.on('error', (e) => {
    conn.error = e;
    if (!conn.destroyedByClient) conn.closedByServer = true;
  });
  socket.on('close', () => {
    if (!conn.destroyedByClient) conn.closedByServer = true;
    for (const w of [...waiters]) w.gone();
  });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return conn;
}

// Sends `pieces` (one string/Buffer, or an array of them written one by one, `gapMs` apart) on a
// new connection and collects what the server sends until it closes the connection, `timeoutMs`
// passes, or `until(data)` holds (then it stops at once, for keep-alive answers).
// Returns { data: Buffer, closedByServer: boolean }.
export async function exchange(port, pieces, { timeoutMs = 3000, gapMs = 0, until, afterUntilMs = 0 } = {}) {
  const conn = await connect(port);
  try {
    const list = Array.isArray(pieces) ? pieces : [pieces];
    for (let i = 0; i < list.length; i++) {
      if (i > 0 && gapMs > 0) await sleep(gapMs);
      if (!(await conn.write(list[i]))) break;
    }
    const predicate = until ?? (() => false);
    await conn.waitFor(predicate, timeoutMs);
    // Give a server that should close right after its answer a moment to do so.
    if (until && afterUntilMs > 0 && !conn.closedByServer) await Promise.race([conn.closed, sleep(afterUntilMs)]);
    return { data: conn.data(), closedByServer: conn.closedByServer };
  } finally {
    conn.destroy();
  }
}

// One request as bytes. `host: null` leaves the Host header out; headers keep their order and
// case; `body` (string or Buffer) gets a Content-Length unless `contentLength: false` or the
// headers already frame it.
export function request(method, target, { headers = {}, body, host = '127.0.0.1', version = 'HTTP/1.1', contentLength = true } = {}) {
  let head = `${method} ${target} ${version}\r\n`;
  if (host !== null) head += `Host: ${host}\r\n`;
  const names = Object.keys(headers).map((n) => n.toLowerCase());
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  const bodyBuf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  if (body !== undefined && contentLength && !names.includes('content-length') && !names.includes('transfer-encoding'))
    head += `Content-Length: ${bodyBuf.length}\r\n`;
  head += '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), bodyBuf]);
}

// Frames data as one HTTP chunk (for hand-made chunked bodies).
export function chunk(data) {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

// Splits a byte stream of HTTP/1.x responses into complete responses, in order:
//   [{ version, status, reason, headers: {lowercase name: value (repeats joined with ', ')},
//      headerList: [[name, value]...], body: Buffer, chunked: boolean, interim: [{status, headers}] }]
// 1xx interim responses are attached to the final response that follows them. Bodies are framed
// by Transfer-Encoding: chunked, Content-Length, or (neither) the end of the stream; 1xx, 204 and
// 304 have none. The array also carries:
//   .rest       the bytes after the last complete response (a truncated one, or garbage)
//   .malformed  a description when the bytes at .rest are not a response head at all
export function splitResponses(buffer) {
  const buf = Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer);
  const out = [];
  let pos = 0;
  let interim = [];
  out.malformed = null;
  for (;;) {
    if (pos >= buf.length) break;
    const headEnd = buf.indexOf(HEAD_END, pos);
    if (headEnd < 0) {
      if (!/^HTTP\/1\.[01] /.test(buf.subarray(pos, pos + 9).toString('latin1')) && buf.length - pos >= 9)
        out.malformed = `bytes that are not a status line: ${JSON.stringify(buf.subarray(pos, pos + 40).toString('latin1'))}`;
      break;
    }
    const lines = buf.subarray(pos, headEnd).toString('latin1').split('\r\n');
    const m = lines[0].match(/^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/);
    if (!m) {
      out.malformed = `bad status line: ${JSON.stringify(lines[0].slice(0, 80))}`;
      break;
    }
    const headers = {};
    const headerList = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) {
        out.malformed = `bad header line: ${JSON.stringify(line.slice(0, 80))}`;
        break;
      }
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      headerList.push([name, value]);
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    if (out.malformed) break;
    const status = Number(m[2]);
    let p = headEnd + 4;
    if (status >= 100 && status < 200) {
      interim.push({ status, headers });
      pos = p;
      continue;
    }
    const response = { version: m[1], status, reason: m[3] ?? '', headers, headerList, body: Buffer.alloc(0), chunked: false, interim };
    let complete = false;
    if (status === 204 || status === 304) {
      complete = true;
    } else if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
      response.chunked = true;
      const parts = [];
      for (;;) {
        const lineEnd = buf.indexOf(CRLF, p);
        if (lineEnd < 0) break;
        const size = parseInt(buf.subarray(p, lineEnd).toString('latin1').split(';')[0].trim(), 16);
        if (Number.isNaN(size)) {
          out.malformed = `bad chunk size line: ${JSON.stringify(buf.subarray(p, Math.min(lineEnd, p + 40)).toString('latin1'))}`;
          break;
        }
        if (size === 0) {
          // Trailers (usually none) up to an empty line.
          const end = buf.indexOf(CRLF, lineEnd + 2) === lineEnd + 2 ? lineEnd + 4 : (() => {
            const t = buf.indexOf(HEAD_END, lineEnd);
            return t < 0 ? -1 : t + 4;
          })();
          if (end < 0 || end > buf.length) break;
          p = end;
          complete = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        if (!buf.subarray(lineEnd + 2 + size, lineEnd + 4 + size).equals(CRLF)) {
          out.malformed = 'chunk data not followed by CRLF';
          break;
        }
        p = lineEnd + 4 + size;
      }
      response.body = Buffer.concat(parts);
      response.chunks = parts;
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (p + n <= buf.length) {
        response.body = buf.subarray(p, p + n);
        p += n;
        complete = true;
      }
    } else {
      // Delimited by the end of the connection: everything left.
      response.body = buf.subarray(p);
      response.untilClose = true;
      p = buf.length;
      complete = true;
    }
    if (!complete || out.malformed) break;
    out.push(response);
    interim = [];
    pos = p;
  }
  out.rest = buf.subarray(pos);
  return out;
}

// The number of complete final responses in `data` (for waitFor/until predicates).
export const responseCount = (data) => splitResponses(data).length;

// The SSE data payloads of a response body, in order.
export function sseData(body) {
  return body
    .toString('utf8')
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

export const json = (response) => JSON.parse(response.body.toString('utf8'));

// Whether an answer id belongs to request `id`: "chatcmpl-<id>" (the fake OpenAI backend names
// answers after the request id it was sent) or "chatcmpl-<id>-<8 hex>" (answers the router makes
// itself: unique even when a client reuses its request id).
export function answerOf(answerId, id) {
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^chatcmpl-${escaped}(-[0-9a-f]{8})?$`).test(answerId);
}
