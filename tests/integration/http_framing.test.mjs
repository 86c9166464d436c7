// The HTTP/1.1 front as RFC 9112 wants it, on raw sockets: every malformed or oversized message
// gets exactly one OpenAI-shaped error and the connection is closed (so nothing smuggled inside
// the bad message is ever answered), well-formed pipelined requests are all answered in order,
// and after each case the server still serves a good request on a new connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';
import { answerOf, chunk, connect, exchange, request, responseCount, splitResponses, sseData } from './support/raw_http.mjs';

const MAX_BODY = 65536;
const auth = { Authorization: `Bearer ${demoKey}` };

let plexus;
before(async () => {
  plexus = await startPlexus(
    baseConfig(
      [
        // Fast: a whole answer of 16 tokens takes ~10 ms.
        { name: 'demo', provider: 'demo', models: ['demo'], options: { first_token_ms: 1, tokens_per_second: 2000 } },
        // Slow: ~400 ms before the first token, so a request pipelined behind it is ready long before.
        { name: 'slow', provider: 'demo', models: ['slow-demo'], options: { first_token_ms: 400, tokens_per_second: 1000 } },
      ],
      { limits: { max_body_bytes: MAX_BODY } },
    ),
  );
});
after(async () => {
  await plexus?.stop();
});

const chatBody = (model = 'demo', extra = {}) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'framing test' }], max_tokens: 16, ...extra });

function chatRequest({ model = 'demo', id, stream = false, headers = {} } = {}) {
  return request('POST', '/v1/chat/completions', {
    headers: { ...auth, 'Content-Type': 'application/json', ...(id ? { 'X-Request-Id': id } : {}), ...headers },
    body: chatBody(model, stream ? { stream: true } : {}),
  });
}

// A request that must never be answered when it travels inside (or behind) a rejected message.
const SMUGGLED = request('GET', '/v1/models', { headers: { ...auth, 'X-Request-Id': 'smuggled' } }).toString('latin1');
// The head of a chat POST, to be completed by each case's framing headers and body.
const CHAT_HEAD = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${demoKey}\r\nContent-Type: application/json\r\n`;

const describeStatuses = (rs) => `[${rs.map((r) => `${r.status} ${r.headers['x-request-id'] ?? ''}`).join(', ')}]`;

// Text a C++ exception would leak into an answer (what the old core sent as 500 bodies).
const CPP_LEAK = /std::|basic_string|bad_alloc|_M_create|exception|stoull|stoll|what\(\)/i;

function assertOpenAiError(response, status, { code, type } = {}) {
  assert.equal(response.status, status, `status ${response.status}, body ${response.body.toString().slice(0, 200)}`);
  const text = response.body.toString('utf8');
  assert.doesNotMatch(text, CPP_LEAK, `the error body leaks C++ exception text: ${text.slice(0, 200)}`);
  assert.match(response.headers['content-type'] ?? '', /application\/json/, `content-type of ${text.slice(0, 100)}`);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(typeof body.error.type, 'string');
  if (code !== undefined) assert.equal(body.error.code, code);
  if (type !== undefined) assert.equal(body.error.type, type);
  return body.error;
}

// A good request on a new connection is answered 200: the server keeps serving.
async function assertStillServes() {
  const { data } = await exchange(plexus.port, chatRequest({ id: 'still-serving' }), { until: (d) => responseCount(d) >= 1 });
  const rs = splitResponses(data);
  assert.equal(rs.length, 1, 'a good request on a new connection gets its answer');
  assert.equal(rs[0].status, 200);
  assert.equal(rs[0].headers['x-request-id'], 'still-serving');
  assert.equal(JSON.parse(rs[0].body.toString()).object, 'chat.completion');
}

// Sends one bad message (with a smuggled request inside or behind it), expects exactly one error
// response, the connection closed by the server, and nothing else on the wire.
async function expectRejected(bytes, status, expected = {}) {
  const { data, closedByServer } = await exchange(plexus.port, bytes, { timeoutMs: 3000 });
  const rs = splitResponses(data);
  assert.equal(rs.length, 1, `exactly one response (no smuggled request answered); got ${rs.length}: ${describeStatuses(rs)}`);
  assert.equal(rs.rest.length, 0, `nothing after the error response: ${JSON.stringify(rs.rest.toString().slice(0, 80))}`);
  assertOpenAiError(rs[0], status, expected);
  assert.ok(closedByServer, 'the server closes the connection after a framing error');
  await assertStillServes();
  return rs[0];
}

describe('bodies over limits.max_body_bytes', () => {
  test('Content-Length over the limit: one 413 request_too_large, connection closed, the request smuggled in the body is never answered', async () => {
    const length = MAX_BODY + 4464; // 70000
    const body = SMUGGLED + 'x'.repeat(length - SMUGGLED.length);
    await expectRejected(CHAT_HEAD + `Content-Length: ${length}\r\n\r\n` + body + SMUGGLED, 413, {
      code: 'request_too_large',
      type: 'invalid_request_error',
    });
  });

  test('a chunked body that grows past the limit: one 413 request_too_large, connection closed, smuggled requests never answered', async () => {
    let bytes = CHAT_HEAD + 'Transfer-Encoding: chunked\r\n\r\n' + chunk(SMUGGLED).toString('latin1');
    for (let i = 0; i < 20; i++) bytes += chunk('x'.repeat(8000)).toString('latin1'); // 160 KB in all
    bytes += '0\r\n\r\n' + SMUGGLED;
    await expectRejected(bytes, 413, { code: 'request_too_large', type: 'invalid_request_error' });
  });

  test('Content-Length 1000000000000 (10^12, over the limit): one 413 request_too_large, connection closed, no C++ error text', async () => {
    await expectRejected(CHAT_HEAD + 'Content-Length: 1000000000000\r\n\r\n' + SMUGGLED, 413, {
      code: 'request_too_large',
      type: 'invalid_request_error',
    });
  });
});

describe('malformed framing: one 400 with a JSON error, connection closed, nothing smuggled is answered', () => {
  const cases = [
    ['a chunk size that is not hex (zz)', CHAT_HEAD + 'Transfer-Encoding: chunked\r\n\r\nzz\r\n' + SMUGGLED],
    ['Content-Length: -1', CHAT_HEAD + 'Content-Length: -1\r\n\r\n' + SMUGGLED],
    ['Content-Length: 18446744073709551616 (2^64, overflows)', CHAT_HEAD + 'Content-Length: 18446744073709551616\r\n\r\n' + SMUGGLED],
    ['a non-numeric Content-Length', CHAT_HEAD + 'Content-Length: abc\r\n\r\n' + SMUGGLED],
    ['two conflicting Content-Length headers', CHAT_HEAD + `Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n` + SMUGGLED],
    [
      'Transfer-Encoding: chunked together with Content-Length',
      CHAT_HEAD + `Transfer-Encoding: chunked\r\nContent-Length: ${5 + SMUGGLED.length}\r\n\r\n0\r\n\r\n` + SMUGGLED,
    ],
    ['a header line without a colon', CHAT_HEAD + `X-Broken-Header\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n` + SMUGGLED],
  ];
  for (const [name, bytes] of cases) {
    test(`${name}: 400, closed, the server keeps serving`, async () => {
      await expectRejected(bytes, 400);
    });
  }

  test('an HTTP/1.1 request without Host: 400, closed (RFC 9112 section 3.2)', async () => {
    await expectRejected('GET /healthz HTTP/1.1\r\nX-Request-Id: no-host\r\n\r\n' + SMUGGLED, 400);
  });
});

describe('headers over their limits: 431 with a JSON error, connection closed', () => {
  test('one header of 100 KiB: 431, closed', async () => {
    await expectRejected(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n` + SMUGGLED, 431);
  });

  // ~22 KB in all: within a byte limit of tens of KiB, so this is the limit on the number of
  // header fields (a server without one keeps 2000 fields per request in memory).
  test('2000 short header lines (a field count over the limit, bytes within it): 431, closed', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n');
    await expectRejected(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\n\r\n` + SMUGGLED, 431);
  });
});

describe('connection management', () => {
  test('Connection: close is answered with connection: close, then the server closes; bytes after that request are not answered', async () => {
    const bytes = Buffer.concat([
      request('GET', '/healthz', { headers: { Connection: 'close', 'X-Request-Id': 'closing' } }),
      request('GET', '/healthz', { headers: { 'X-Request-Id': 'after-close' } }),
    ]);
    const { data, closedByServer } = await exchange(plexus.port, bytes, { timeoutMs: 3000 });
    const rs = splitResponses(data);
    assert.equal(rs.length, 1, `only the request with Connection: close is answered: ${describeStatuses(rs)}`);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['x-request-id'], 'closing');
    assert.equal((rs[0].headers.connection ?? '').toLowerCase(), 'close');
    assert.ok(closedByServer, 'the server closes the connection');
    await assertStillServes();
  });

  test('HTTP/1.0 without keep-alive: one answer, then the server closes', async () => {
    const bytes = 'GET /healthz HTTP/1.0\r\nX-Request-Id: ten\r\n\r\n' + 'GET /healthz HTTP/1.0\r\nX-Request-Id: ten-again\r\n\r\n';
    const { data, closedByServer } = await exchange(plexus.port, bytes, { timeoutMs: 3000 });
    const rs = splitResponses(data);
    assert.equal(rs.length, 1, describeStatuses(rs));
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['x-request-id'], 'ten');
    assert.ok(closedByServer, 'an HTTP/1.0 connection without keep-alive is closed after the answer');
    await assertStillServes();
  });

  test('HTTP/1.0 with Connection: keep-alive is answered', async () => {
    const { data } = await exchange(plexus.port, 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id: ten-ka\r\n\r\n', {
      until: (d) => responseCount(d) >= 1,
    });
    const rs = splitResponses(data);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['x-request-id'], 'ten-ka');
    assert.deepEqual(JSON.parse(rs[0].body.toString()), { status: 'ok' });
  });

  test('Expect: 100-continue gets 100 Continue before the body is sent, then the answer', async () => {
    const body = chatBody();
    const head = `${CHAT_HEAD}X-Request-Id: expect-continue\r\nExpect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const conn = await connect(plexus.port);
    try {
      await conn.write(head);
      assert.ok(await conn.waitFor((d) => d.toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 3000),
        `got ${JSON.stringify(conn.data().toString('latin1').slice(0, 40))}`);
      await conn.write(body);
      assert.ok(await conn.waitFor((d) => responseCount(d) >= 1, 5000));
      const rs = splitResponses(conn.data());
      assert.equal(rs.length, 1, 'the 100 is interim, then one answer');
      assert.equal(rs[0].status, 200);
      assert.equal(rs[0].headers['x-request-id'], 'expect-continue');
    } finally {
      conn.destroy();
    }
  });

  test('a request written one byte at a time is answered', async () => {
    const bytes = chatRequest({ id: 'byte-by-byte' });
    const pieces = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    const { data } = await exchange(plexus.port, pieces, { gapMs: 1, timeoutMs: 5000, until: (d) => responseCount(d) >= 1 });
    const rs = splitResponses(data);
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['x-request-id'], 'byte-by-byte');
    const body = JSON.parse(rs[0].body.toString());
    assert.ok(answerOf(body.id, 'byte-by-byte'), body.id);
    assert.equal(body.object, 'chat.completion');
  });
});

describe('pipelining: every request in one write is answered, in order', () => {
  test('50 pipelined GET /healthz in one write: 50 responses, all 200, x-request-id in request order', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `pipe-${i}`);
    const bytes = Buffer.concat(ids.map((id) => request('GET', '/healthz', { headers: { 'X-Request-Id': id } })));
    const { data, closedByServer } = await exchange(plexus.port, bytes, { timeoutMs: 3000, until: (d) => responseCount(d) >= 50 });
    const rs = splitResponses(data);
    assert.equal(rs.length, 50, `50 answers, got ${rs.length}`);
    assert.equal(rs.rest.length, 0);
    assert.deepEqual(rs.map((r) => r.status), ids.map(() => 200));
    assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ids);
    assert.ok(!closedByServer, 'a keep-alive connection stays open');
  });

  for (const stream of [false, true]) {
    test(`a slow ${stream ? 'streamed' : 'whole'} chat then GET /healthz in one write: the chat's answer comes first, then the healthz`, async () => {
      const bytes = Buffer.concat([
        chatRequest({ model: 'slow-demo', id: 'slow-chat', stream }),
        request('GET', '/healthz', { headers: { 'X-Request-Id': 'after-chat' } }),
      ]);
      const { data } = await exchange(plexus.port, bytes, { timeoutMs: 4000, until: (d) => responseCount(d) >= 2 });
      const rs = splitResponses(data);
      assert.equal(rs.length, 2, `two answers: ${describeStatuses(rs)}`);
      assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ['slow-chat', 'after-chat']);
      assert.equal(rs[0].status, 200);
      if (stream) {
        const events = sseData(rs[0].body);
        assert.equal(events.at(-1), '[DONE]');
        for (const e of events.slice(0, -1)) assert.ok(answerOf(JSON.parse(e).id, 'slow-chat'), e);
      } else {
        assert.ok(answerOf(JSON.parse(rs[0].body.toString()).id, 'slow-chat'));
      }
      assert.equal(rs[1].status, 200);
      assert.deepEqual(JSON.parse(rs[1].body.toString()), { status: 'ok' });
      assert.equal(rs.rest.length, 0);
    });
  }

  test('20 pipelined mixed requests (whole chat, streamed chat, healthz, models, unknown path): 20 answers in order with the right statuses', async () => {
    const kinds = [
      { make: (id) => chatRequest({ id }), status: 200, check: (r, id) => assert.ok(answerOf(JSON.parse(r.body.toString()).id, id)) },
      { make: (id) => request('GET', '/healthz', { headers: { 'X-Request-Id': id } }), status: 200, check: (r) => assert.deepEqual(JSON.parse(r.body.toString()), { status: 'ok' }) },
      {
        make: (id) => request('GET', '/v1/models', { headers: { ...auth, 'X-Request-Id': id } }),
        status: 200,
        check: (r) => assert.ok(JSON.parse(r.body.toString()).data.some((m) => m.id === 'demo')),
      },
      { make: (id) => request('GET', '/v1/nope', { headers: { ...auth, 'X-Request-Id': id } }), status: 404, check: (r) => assertOpenAiError(r, 404, { code: 'unknown_url' }) },
      {
        make: (id) => chatRequest({ id, stream: true }),
        status: 200,
        check: (r, id) => {
          const events = sseData(r.body);
          assert.equal(events.at(-1), '[DONE]');
          for (const e of events.slice(0, -1)) assert.ok(answerOf(JSON.parse(e).id, id), e);
        },
      },
    ];
    const plan = Array.from({ length: 20 }, (_, i) => ({ id: `mix-${i}`, kind: kinds[i % kinds.length] }));
    const bytes = Buffer.concat(plan.map(({ id, kind }) => kind.make(id)));
    const { data } = await exchange(plexus.port, bytes, { timeoutMs: 5000, until: (d) => responseCount(d) >= 20 });
    const rs = splitResponses(data);
    assert.equal(rs.length, 20, `20 answers, got ${rs.length}: ${describeStatuses(rs)}`);
    assert.deepEqual(rs.map((r) => r.headers['x-request-id']), plan.map((p) => p.id));
    assert.deepEqual(rs.map((r) => r.status), plan.map((p) => p.kind.status));
    rs.forEach((r, i) => plan[i].kind.check(r, plan[i].id));
    assert.equal(rs.rest.length, 0);
  });
});

describe('slow and idle clients', () => {
  let timed;
  before(async () => {
    timed = await startPlexus(baseConfig(
      [{ name: 'demo', provider: 'demo', models: ['demo'], options: { first_token_ms: 1, tokens_per_second: 2000 } }],
      { limits: { request_timeout_s: 1, keepalive_timeout_s: 2 } }));
  });
  after(async () => {
    await timed?.stop();
  });

  test('a request that never completes (half its headers) gets 408 request_timeout, then the connection closes', async () => {
    const conn = await connect(timed.port);
    try {
      await conn.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le');
      assert.ok(await conn.waitFor(() => false, 4000) === false && conn.closedByServer, 'closed by the server');
      const rs = splitResponses(conn.data());
      assert.equal(rs.length, 1);
      assert.equal(rs[0].status, 408);
      assert.equal(JSON.parse(rs[0].body.toString()).error.code, 'request_timeout');
    } finally {
      conn.destroy();
    }
  });

  test('a body sent slower than the request timeout allows gets 408 too (slowloris)', async () => {
    const conn = await connect(timed.port);
    try {
      await conn.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{`);
      for (let i = 0; i < 6 && !conn.closedByServer; i++) {
        await conn.write('"');  // a byte every 300 ms keeps it active but never completes it
        await new Promise((r) => setTimeout(r, 300));
      }
      await conn.waitFor(() => false, 2000);
      const rs = splitResponses(conn.data());
      assert.equal(rs[0]?.status, 408);
      assert.ok(conn.closedByServer);
    } finally {
      conn.destroy();
    }
  });

  test('an idle keep-alive connection is closed after keepalive_timeout_s, silently', async () => {
    const conn = await connect(timed.port);
    try {
      await conn.write(request('GET', '/healthz'));
      assert.ok(await conn.waitFor((d) => responseCount(d) >= 1, 2000));
      await conn.waitFor(() => false, 5000);
      assert.ok(conn.closedByServer, 'closed');
      assert.equal(splitResponses(conn.data()).length, 1, 'nothing but the one answer');
    } finally {
      conn.destroy();
    }
  });
});
