// One client's answer never reaches another. Hundreds of cycles, many at once: a client starts a
// stream and cuts it (destroy, no FIN first) after a few ms or a few bytes, and at that moment a
// brand-new client connects (the server likely reuses the file descriptor number) and sends a
// whole or streamed request. Every answer must be its own: it starts with its own status line,
// carries its own x-request-id, and every chunk carries its own id ("chatcmpl-<request id>" from
// the fake OpenAI backend, "chatcmpl-<request id>-<suffix>" from the demo provider).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';
import { answerOf, connect, request, responseCount, splitResponses, sseData } from './support/raw_http.mjs';

const CYCLES = 1000;
const PARALLEL = 32; // cycles in flight at once
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pick = (weights) => {
  // weights: [[value, weight]...]
  let r = Math.random() * weights.reduce((s, [, w]) => s + w, 0);
  for (const [v, w] of weights) if ((r -= w) < 0) return v;
  return weights.at(-1)[0];
};

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI({ name: 'relay' });
  plexus = await startPlexus(
    baseConfig([
      // ~2 ms per token: a 24-token stream lasts ~50 ms, so cuts land mid-stream.
      { name: 'demo', provider: 'demo', models: ['demo'], options: { first_token_ms: 2, tokens_per_second: 500 } },
      // The relay path (upstream loop, SSE parser): "slow" streams 20 chunks 20 ms apart.
      { name: 'relay', provider: 'openai', url: fake.url, models: [{ id: 'relay', upstream_model: 'gpt-x' }, { id: 'relay-slow', upstream_model: 'slow' }] },
    ], { limits: { max_inflight: 4096 } }),
  );
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

let seq = 0;
const newId = (kind) => `iso-${kind}-${seq++}-${crypto.randomBytes(4).toString('hex')}`;

function chatRequest(id, model, stream) {
  return request('POST', '/v1/chat/completions', {
    headers: { Authorization: `Bearer ${demoKey}`, 'Content-Type': 'application/json', 'X-Request-Id': id },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: `marker ${id}` }], max_tokens: 24, stream }),
  });
}

const violations = []; // an answer (or part of one) that is not the client's own
const failures = []; // anything else that went wrong (lost, wrong status, timeout)
const chunkIdOwner = new Map(); // chatcmpl id -> the response it was seen in
let checkedResponses = 0;
let checkedChunks = 0;
let cutWithBytes = 0; // cut clients that had received part of their answer (checked as a prefix)

function noteId(chunkId, owner, where) {
  const seen = chunkIdOwner.get(chunkId);
  if (seen === undefined) chunkIdOwner.set(chunkId, owner);
  else if (seen !== owner) violations.push(`${where}: chunk id ${chunkId} appears in two responses (${seen} and ${owner})`);
}

// A complete response must be entirely its own.
function checkResponse(r, id, stream, where) {
  checkedResponses++;
  if (r.status !== 200) failures.push(`${where}: status ${r.status} ${r.body.toString().slice(0, 160)}`);
  if (r.headers['x-request-id'] !== id) violations.push(`${where}: x-request-id ${r.headers['x-request-id']} on the response to ${id}`);
  if (stream) {
    const events = sseData(r.body);
    if (events.at(-1) !== '[DONE]') failures.push(`${where}: stream does not end with [DONE]`);
    for (const e of events) {
      if (e === '[DONE]') continue;
      let chunk;
      try {
        chunk = JSON.parse(e);
      } catch {
        violations.push(`${where}: an event that is not JSON: ${JSON.stringify(e.slice(0, 80))}`);
        continue;
      }
      if (chunk.error) {
        failures.push(`${where}: error event ${JSON.stringify(chunk.error).slice(0, 160)}`);
        continue;
      }
      checkedChunks++;
      if (!answerOf(chunk.id, id)) violations.push(`${where}: chunk id ${chunk.id} in the stream of ${id}`);
      noteId(chunk.id, id, where);
    }
  } else {
    let body;
    try {
      body = JSON.parse(r.body.toString());
    } catch {
      violations.push(`${where}: a whole answer that is not JSON: ${JSON.stringify(r.body.toString().slice(0, 80))}`);
      return;
    }
    if (!answerOf(body.id, id)) violations.push(`${where}: id ${body.id} in the answer to ${id}`);
    noteId(body.id, id, where);
  }
}

// What a cut client received before it cut is a prefix of its own response.
function checkPrefix(data, id, where) {
  if (data.length === 0) return;
  if (where === 'cut client') cutWithBytes++;
  const text = data.toString('latin1');
  const start = 'HTTP/1.1 '.slice(0, Math.min(9, text.length));
  if (!text.startsWith(start)) violations.push(`${where}: stray bytes before the status line: ${JSON.stringify(text.slice(0, 60))}`);
  for (const m of text.matchAll(/"id":\s*"(chatcmpl-[^"]*)"/g)) {
    if (!answerOf(m[1], id)) violations.push(`${where}: chunk id ${m[1]} reached the client of ${id}`);
    else noteId(m[1], id, where);
  }
  for (const m of text.matchAll(/\r\nx-request-id: *([^\r\n]*)/gi))
    if (m[1] !== id) violations.push(`${where}: x-request-id ${m[1]} reached the client of ${id}`);
}

// Starts a stream and cuts it after a few ms or after some bytes.
async function cutter() {
  const id = newId('cut');
  const model = pick([['demo', 6], ['relay-slow', 4]]);
  const conn = await connect(plexus.port);
  await conn.write(chatRequest(id, model, true));
  const when = Math.random();
  if (when < 0.3) await sleep(Math.floor(Math.random() * 5)); // before the upstream answers
  else if (when < 0.6) await sleep(5 + Math.floor(Math.random() * 115)); // mid-stream, by time
  else {
    const want = 1 + Math.floor(Math.random() * 4000); // mid-stream, by bytes received
    await conn.waitFor((d) => d.length >= want, 1000);
  }
  conn.destroy();
  checkPrefix(conn.data(), id, 'cut client');
}

// A brand-new connection with one or two whole or streamed requests, read to the end.
async function fullClient() {
  const conn = await connect(plexus.port);
  try {
    const requests = Math.random() < 0.2 ? 2 : 1;
    const sent = [];
    for (let i = 0; i < requests; i++) {
      const id = newId('full');
      const model = pick([['demo', 6], ['relay', 3], ['relay-slow', 1]]);
      const stream = Math.random() < 0.5;
      sent.push({ id, stream });
      await conn.write(chatRequest(id, model, stream));
      const ok = await conn.waitFor((d) => responseCount(d) >= i + 1, 10000);
      if (!ok) {
        failures.push(`client of ${id}: no complete answer (${conn.closedByServer ? 'closed by the server' : 'timed out'}); got ${conn.bytes} bytes`);
        // The answers that did complete are checked whole; what follows them is this one's start.
        const done = splitResponses(conn.data());
        done.forEach((r, k) => sent[k] && checkResponse(r, sent[k].id, sent[k].stream, `client of ${sent[k].id}`));
        checkPrefix(done.rest, id, 'unfinished client');
        return;
      }
    }
    // Stay a moment: bytes of someone else's stream arriving late would show up here.
    await sleep(10);
    const data = conn.data();
    if (!data.subarray(0, 9).equals(Buffer.from('HTTP/1.1 ')))
      violations.push(`client of ${sent[0].id}: stray bytes before the status line: ${JSON.stringify(data.subarray(0, 60).toString('latin1'))}`);
    const rs = splitResponses(data);
    if (rs.length !== sent.length) violations.push(`client of ${sent[0].id}: ${rs.length} responses to ${sent.length} requests`);
    if (rs.rest.length) violations.push(`client of ${sent[0].id}: ${rs.rest.length} bytes after its answers: ${JSON.stringify(rs.rest.subarray(0, 60).toString('latin1'))}`);
    rs.forEach((r, i) => sent[i] && checkResponse(r, sent[i].id, sent[i].stream, `client of ${sent[i].id}`));
  } finally {
    conn.destroy();
  }
}

// One cycle: a stream is cut, and at that moment new clients connect (likely on the cut one's fd).
async function cycle() {
  const cut = cutter();
  const early = Math.random() < 0.3 ? fullClient() : null; // one already running while the cut happens
  await cut;
  await Promise.all([fullClient(), early]);
}

test(`${CYCLES} cycles of cut streams and new clients (${PARALLEL} at once): no answer, chunk or header reaches another client`, { timeout: 120000 }, async () => {
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < CYCLES) {
        next++;
        await cycle();
      }
    }),
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const report = `${CYCLES} cycles in ${seconds} s: ${checkedResponses} complete responses and ${checkedChunks} chunks checked, ` +
    `${cutWithBytes} cut clients' partial answers checked; ` +
    `${violations.length} isolation violations, ${failures.length} other failures`;
  console.log(report);
  assert.equal(violations.length, 0, `${report}\nfirst violations:\n${violations.slice(0, 15).join('\n')}\nother failures:\n${failures.slice(0, 5).join('\n')}`);
  assert.equal(failures.length, 0, `${report}\nfirst failures:\n${failures.slice(0, 15).join('\n')}`);
  assert.ok(checkedResponses >= CYCLES, 'every cycle checked at least one complete response');
  assert.equal(plexus.proc.exitCode, null, 'the router is still running');
  assert.equal(plexus.proc.signalCode, null, 'the router did not crash');
});
