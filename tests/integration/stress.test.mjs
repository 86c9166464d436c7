// Load with failures mixed in, on 4 reactor threads: 2,000 whole and streamed chat requests over
// 200 keep-alive raw connections, ~10% of them aborted mid-stream by the client, upstream 5xx
// (before the first byte) and upstream deaths mid-stream mixed in. Every request that is not
// aborted gets exactly one complete, correct answer; afterwards the router's memory is back near
// where it started.
//
// Always threads: 4 (ctest registers this suite once, not in the threads matrix).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';
import { connect, request, splitResponses, sseData } from './support/raw_http.mjs';

const REQUESTS = 2000;
const CONNECTIONS = 200;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  plexus = await startPlexus(
    baseConfig(
      [
        { name: 'fake', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'] },
        // The failing models on an upstream of their own, so its failure count never makes the
        // healthy one look bad.
        { name: 'broken', provider: 'openai', url: fake.url, models: ['fail-500', 'die-mid'] },
      ],
      { threads: 4, limits: { max_inflight: 4096 } },
    ),
  );
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

// The fake's "slow" model: a role chunk, then "0 " ... "19 ", then the finish chunk.
const SLOW_CONTENT = ['', ...Array.from({ length: 20 }, (_, i) => `${i} `)];

// What request i is; a fixed spread (not random), so a failure reruns the same mix.
//   whole 40%, stream 35%, abort 10%, die-mid 7%, fail-500 whole 4%, fail-500 stream 4%
function kindOf(i) {
  const r = (i * 37) % 100;
  if (r < 40) return 'whole';
  if (r < 75) return 'stream';
  if (r < 85) return 'abort';
  if (r < 92) return 'die-mid';
  if (r < 96) return 'fail-whole';
  return 'fail-stream';
}
const MODEL = { whole: 'gpt-x', stream: 'slow', abort: 'slow', 'die-mid': 'die-mid', 'fail-whole': 'fail-500', 'fail-stream': 'fail-500' };
const STREAMED = { whole: false, stream: true, abort: true, 'die-mid': true, 'fail-whole': false, 'fail-stream': true };

function chatRequest(id, kind) {
  return request('POST', '/v1/chat/completions', {
    headers: { Authorization: `Bearer ${demoKey}`, 'Content-Type': 'application/json', 'X-Request-Id': id },
    body: JSON.stringify({ model: MODEL[kind], messages: [{ role: 'user', content: `stress ${id}` }], stream: STREAMED[kind] }),
  });
}

const problems = [];
const counts = { answered: 0, aborted: 0 };

function parseEvents(r, where) {
  const events = sseData(r.body);
  if (events.at(-1) !== '[DONE]') problems.push(`${where}: the stream does not end with [DONE]`);
  return events.slice(0, -1).map((e) => {
    try {
      return JSON.parse(e);
    } catch {
      problems.push(`${where}: an event that is not JSON: ${e.slice(0, 80)}`);
      return {};
    }
  });
}

// Checks one complete response against what request `id` of `kind` must get.
function check(r, id, kind) {
  const where = `${kind} ${id}`;
  if (r.headers['x-request-id'] !== id) problems.push(`${where}: x-request-id ${r.headers['x-request-id']}`);
  const own = `chatcmpl-${id}`;
  if (kind === 'whole') {
    if (r.status !== 200) return problems.push(`${where}: status ${r.status}`);
    const body = JSON.parse(r.body.toString());
    if (body.id !== own) problems.push(`${where}: id ${body.id}`);
    if (body.choices?.[0]?.message?.content !== 'Hello from fake') problems.push(`${where}: content ${JSON.stringify(body.choices?.[0]?.message)}`);
  } else if (kind === 'stream') {
    if (r.status !== 200) return problems.push(`${where}: status ${r.status}`);
    const chunks = parseEvents(r, where);
    if (chunks.some((c) => c.id !== own)) problems.push(`${where}: a chunk with another id`);
    const content = chunks.filter((c) => c.choices?.[0]?.delta?.content !== undefined).map((c) => c.choices[0].delta.content);
    if (JSON.stringify(content) !== JSON.stringify(SLOW_CONTENT)) problems.push(`${where}: chunks out of order or missing: ${JSON.stringify(content)}`);
    if (chunks.at(-1)?.choices?.[0]?.finish_reason !== 'stop') problems.push(`${where}: no finish chunk before [DONE]`);
  } else if (kind === 'die-mid') {
    if (r.status !== 200) return problems.push(`${where}: status ${r.status}`);
    const events = parseEvents(r, where);
    const error = events.at(-1);
    if (!error?.error || typeof error.error.message !== 'string') problems.push(`${where}: no error event before [DONE]: ${JSON.stringify(events.at(-1))}`);
    const content = events.slice(0, -1).map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
    if (content !== 'partial') problems.push(`${where}: delivered ${JSON.stringify(content)} before the failure`);
  } else {
    // fail-500, whole or streamed: the upstream failed before the first byte, so a whole 502; or,
    // once its breaker opened after failures in a row, a 503 nodes_cooling_down without calling it.
    if (r.status !== 502 && r.status !== 503) return problems.push(`${where}: status ${r.status}, not 502 or 503`);
    const body = JSON.parse(r.body.toString());
    if (typeof body.error?.message !== 'string') problems.push(`${where}: not an OpenAI error body`);
    if (r.status === 503 && body.error.code !== 'nodes_cooling_down') problems.push(`${where}: 503 ${body.error.code}`);
  }
}

let nextRequest = 0;

// One client: a keep-alive connection doing requests one after another; an abort destroys the
// connection mid-stream and the client goes on with a new one.
async function client() {
  let conn = null;
  let sent = 0; // requests on this connection
  let offset = 0; // where the next response starts
  const finish = async () => {
    if (!conn) return;
    // Anything after the last answer would be an answer to nothing (answered twice, or leaked).
    await sleep(50);
    const rest = conn.data().subarray(offset);
    if (rest.length) problems.push(`connection with ${sent} requests: ${rest.length} bytes after its last answer: ${JSON.stringify(rest.subarray(0, 80).toString('latin1'))}`);
    conn.destroy();
    conn = null;
  };
  while (nextRequest < REQUESTS) {
    const i = nextRequest++;
    const kind = kindOf(i);
    const id = `stress-${i}`;
    if (!conn) {
      conn = await connect(plexus.port);
      sent = 0;
      offset = 0;
    }
    await conn.write(chatRequest(id, kind));
    sent++;
    if (kind === 'abort') {
      // Read the head and 1..5 content chunks, then go away without a FIN.
      const want = 1 + (i % 5);
      await conn.waitFor((d) => (d.subarray(offset).toString('latin1').match(/"content":"\d+ "/g) ?? []).length >= want, 10000);
      conn.destroy();
      conn = null;
      counts.aborted++;
      continue;
    }
    const start = offset;
    const complete = await conn.waitFor((d) => splitResponses(d.subarray(start)).length >= 1, 15000);
    if (!complete) {
      problems.push(`${kind} ${id}: no complete answer (${conn.closedByServer ? 'connection closed by the server' : 'timed out'})`);
      conn.destroy();
      conn = null;
      continue;
    }
    const rs = splitResponses(conn.data().subarray(start));
    if (rs.length !== 1 || rs.rest.length) problems.push(`${kind} ${id}: ${rs.length} responses and ${rs.rest.length} more bytes for one request`);
    check(rs[0], id, kind);
    counts.answered++;
    offset = conn.data().length - rs.rest.length;
    if (conn.closedByServer) {
      problems.push(`${kind} ${id}: the server closed a keep-alive connection`);
      conn = null;
    }
  }
  await finish();
}

test(`${REQUESTS} mixed requests over ${CONNECTIONS} keep-alive connections with aborts and upstream failures: each answered exactly once and correctly; memory returns to baseline`, { timeout: 180000 }, async () => {
  // Warm up (thread-local state, the upstream connection pool, allocator arenas), then measure.
  for (const kind of ['whole', 'stream', 'fail-whole']) {
    const conn = await connect(plexus.port);
    await conn.write(chatRequest(`warm-${kind}`, kind));
    await conn.waitFor((d) => splitResponses(d).length >= 1, 5000);
    conn.destroy();
  }
  await sleep(500);
  const baseline = rssKiB(plexus.proc.pid);

  const started = Date.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => client()));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const peak = rssKiB(plexus.proc.pid);
  await sleep(2000);
  const settled = rssKiB(plexus.proc.pid);

  const report = `${REQUESTS} requests in ${seconds} s: ${counts.answered} answered, ${counts.aborted} aborted; ` +
    `RSS ${(baseline / 1024).toFixed(1)} MiB before, ${(peak / 1024).toFixed(1)} MiB right after, ${(settled / 1024).toFixed(1)} MiB 2 s later`;
  console.log(report);
  assert.equal(problems.length, 0, `${report}\n${problems.length} problems, first ones:\n${problems.slice(0, 20).join('\n')}`);
  assert.equal(counts.answered + counts.aborted, REQUESTS, 'every request was either answered or aborted by its client');
  assert.equal(plexus.proc.exitCode, null, 'the router is still running');

  // The bound: at most 200 exchanges are in flight at once, each holding a few tens of KiB
  // (request, buffers, an upstream transfer), so the live working set of this load is ~10-20 MiB;
  // the allocator may keep some freed memory in its per-thread arenas (4 reactors + the loop).
  // 64 MiB is well above that, and well below what keeping the state of the 2,000 requests (or
  // of the 200 aborted streams' buffers) would cost: a leak of >= 32 KiB per request fails here.
  const grownMiB = (settled - baseline) / 1024;
  assert.ok(grownMiB < 64, `RSS grew by ${grownMiB.toFixed(1)} MiB over the baseline and stayed there (${report})`);

  // And it still serves.
  const conn = await connect(plexus.port);
  await conn.write(chatRequest('after-stress', 'whole'));
  await conn.waitFor((d) => splitResponses(d).length >= 1, 5000);
  const [r] = splitResponses(conn.data());
  conn.destroy();
  assert.equal(r?.status, 200);
});
