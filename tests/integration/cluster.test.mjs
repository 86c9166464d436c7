// Several routers on one Redis and one PostgreSQL (cluster.redis, ledger.postgres): a node joins
// every router it is given, or that the router it joined tells it of (when it joins, or when a
// router starts later), so either serves any request; a key's rate limit and budget hold
// across routers, and so does a breaker one router opened; the ledger is one, each router with
// its own chain of receipts; a router stopped loses no ledger row; Redis restarted, the routers
// sync again without restarting.
// Debian's redis-server and PostgreSQL, installed and started by scripts/test.sh.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { adminKey, freePort, startNode, startRouter, waitFor } from './support/nodes.mjs';
import { chat, testThreads, user } from './support/plexus.mjs';

const pg = process.env.PLEXUS_TEST_POSTGRES;
let redis, redisPort, database, a, b, node, flaky, told;
const cleanups = [];

async function startRedis(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  await waitFor(() => /Ready to accept connections/.test(out), 10000, `redis to start:\n${out}`);
  return { proc, stop: () => new Promise((r) => { proc.on('exit', r); proc.kill('SIGKILL'); }) };
}

function routerConfig(id) {
  return {
    listen: '127.0.0.1:0',
    ...(testThreads !== undefined ? { threads: testThreads } : {}),
    keys: [
      { id: 'admin', key: adminKey, admin: true },
      { id: 'limited', key: 'sk-limited-key-1', rpm: 6 },
      { id: 'budgeted', key: 'sk-budgeted-key-1', budget: 0.1 },
      { id: 'free', key: 'sk-free-key-1' },
    ],
    nodes: { listen: '127.0.0.1:0', heartbeat_interval_ms: 200, liveness_timeout_ms: 800 },
    upstreams: [{ name: 'flaky', provider: 'openai', url: flaky.url, models: ['flaky-only'] }],
    routing: { breaker: { consecutive_failures: 2, cooldown_ms: 60000 } },
    node_tokens: [{ id: 'lab', token: 'nt-cluster-token-1', groups: ['public'] }],
    ledger: { postgres: database, flush_ms: 50 },
    cluster: { redis: `redis://127.0.0.1:${redisPort}`, id, sync_ms: 50 },
    log: { level: 'info', access_log: true },
  };
}
const ask = (router, key, extra = {}) => chat(router.url, { model: 'demo', messages: user('hi'), max_tokens: 20, ...extra }, { key });
const synced = (router) => waitFor(() => /cluster: in sync through redis/.test(router.stderr()), 10000, 'the router in sync');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A test that counts per minute waits out a minute about to end.
async function freshMinute() {
  const s = new Date().getSeconds();
  if (s > 45) await sleep((61 - s) * 1000);
}

before(async () => {
  assert.ok(pg, 'PLEXUS_TEST_POSTGRES is set by scripts/test.sh (PostgreSQL must run for this suite)');
  const name = `plexus_cluster_${crypto.randomBytes(6).toString('hex')}`;
  execFileSync('psql', [pg, '-qc', `CREATE DATABASE ${name}`]);
  cleanups.push(() => execFileSync('psql', [pg, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]));
  database = pg.replace(/\/[^/]*$/, `/${name}`);
  flaky = await startFakeOpenAI({ name: 'flaky' });
  flaky.state.failing = true;
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  // Both at once, on a new database: their migrations must not race.
  [a, b] = await Promise.all([startRouter(routerConfig('router-a')), startRouter(routerConfig('router-b'))]);
  await synced(a);
  await synced(b);
  node = await startNode(a, {
    name: 'gpu', token: 'nt-cluster-token-1', join: false,
    args: ['--router', `127.0.0.1:${a.nodePort},127.0.0.1:${b.nodePort}`, '--max-concurrency', '8', '--price-out', '0.5',
           '--backend-options', '{"first_token_ms": 1, "tokens_per_second": 5000}'],
  });
  await waitFor(() => (node.stderr().match(/joined the router/g) ?? []).length >= 2, 10000, `the node to join both:\n${node.stderr()}`);
});
after(async () => {
  await node?.stop();
  await told?.stop();
  await a?.stop();
  await b?.stop();
  await redis?.stop();
  await flaky?.close();
  for (const c of cleanups.reverse()) c();
});

test('one node joins both routers; either router serves', async () => {
  for (const router of [a, b]) {
    const res = await ask(router, 'sk-free-key-1');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-plexus-node'), 'gpu@lab');
    await res.json();
  }
});

test('a node given one router learns the other through Redis and joins it too', async () => {
  told = await startNode(a, {
    name: 'gpu2', token: 'nt-cluster-token-1', join: false,
    args: ['--router', `127.0.0.1:${a.nodePort}`, '--price-out', '0.5', '--backend-options', '{"first_token_ms": 1, "tokens_per_second": 5000}'],
  });
  try {
    await waitFor(() => (told.stderr().match(/joined the router/g) ?? []).length >= 2, 30000, 'gpu2 to join both');
  } catch (e) {
    throw new Error(`${e.message}\n${told.stderr()}`);
  }
  assert.match(told.stderr(), new RegExp(`told of another router of its network at 127\\.0\\.0\\.1:${b.nodePort}`));
  const onB = await (await fetch(`${b.url}/v1/nodes`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
  assert.ok(onB.data.some((n) => n.id === 'gpu2@lab'), 'B lists the node it was never given');
});

test('a router that starts after a node joined is announced to it (Routers), and the node joins it', async () => {
  const c = await startRouter(routerConfig('router-c'));
  try {
    await synced(c);
    // "gpu" joined A and B before C existed: it hears of C from A or B once their syncs see it.
    await waitFor(() => new RegExp(`told of another router of its network at 127\\.0\\.0\\.1:${c.nodePort}`).test(node.stderr()),
      20000, `gpu to hear of router C:\n${node.stderr()}`);
    await waitFor(async () => {
      const listed = await (await fetch(`${c.url}/v1/nodes`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
      return listed.data.some((n) => n.id === 'gpu@lab');
    }, 10000, 'C to list gpu');
    const res = await ask(c, 'sk-free-key-1');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('x-plexus-node'), /^gpu2?@lab$/, 'C serves with nodes it was never given');
    await res.json();
  } finally {
    await c.stop();
  }
});

test("a key's rate limit holds across routers", async () => {
  await freshMinute();
  for (let i = 0; i < 3; i++) {
    const res = await ask(a, 'sk-limited-key-1');
    assert.equal(res.status, 200);
    await res.json();
  }
  await sleep(300);  // a few sync periods
  for (let i = 0; i < 3; i++) {
    const res = await ask(b, 'sk-limited-key-1');
    assert.equal(res.status, 200, `request ${i + 4} of 6`);
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), String(2 - i), 'B counts what A served');
    await res.json();
  }
  await sleep(300);
  for (const router of [a, b]) {
    const res = await ask(router, 'sk-limited-key-1');
    assert.equal(res.status, 429, 'the seventh request in the minute, on either router');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    await res.text();
  }
});

test("a key's budget spent on one router is spent on the other", async () => {
  let served = 0;
  for (let i = 0; i < 20; i++) {
    const res = await ask(a, 'sk-budgeted-key-1');
    await res.text();
    if (res.status === 402) break;
    assert.equal(res.status, 200);
    served++;
  }
  assert.ok(served >= 1 && served < 20, `A served ${served} then refused`);
  await sleep(300);
  const res = await ask(b, 'sk-budgeted-key-1');
  assert.equal(res.status, 402, 'B refuses what A used up');
  assert.equal((await res.json()).error.code, 'budget_exceeded');
});

test('a breaker one router opened is open on the other: it does not try that node', async () => {
  for (let i = 0; i < 2; i++) {
    const res = await ask(a, 'sk-free-key-1', { model: 'flaky-only' });
    assert.equal(res.status, 502);
    await res.text();
  }
  const tried = flaky.state.requests.length;
  await sleep(300);
  const res = await ask(b, 'sk-free-key-1', { model: 'flaky-only' });
  assert.equal(res.status, 503);
  assert.equal((await res.json()).error.code, 'nodes_cooling_down');
  assert.equal(flaky.state.requests.length, tried, 'B never called the node A found failing');
});

test('one ledger: each router its own receipt chain; usage seen from either', async () => {
  const res = await ask(b, 'sk-free-key-1');
  await res.json();
  const id = res.headers.get('x-request-id');
  await sleep(200);
  const chain = await (await fetch(`${a.url}/receipts/${id}/chain`)).json();  // asked of the other router
  const claims = JSON.parse(Buffer.from(chain.receipt.jws.split('.')[1], 'base64url'));
  assert.equal(claims.request_id, id);
  assert.ok(chain.previous === null || JSON.parse(Buffer.from(chain.previous.jws.split('.')[1], 'base64url')).seq === claims.seq - 1);
  const usage = await (await fetch(`${a.url}/v1/usage`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
  const requests = usage.data.reduce((n, r) => n + r.requests, 0);
  assert.ok(requests >= 10, `A's usage counts B's requests too (${requests})`);
});

test('a router stopped loses no ledger row', async () => {
  const usage = async () => (await (await fetch(`${a.url}/v1/usage`, { headers: { authorization: `Bearer ${adminKey}` } })).json())
    .data.filter((r) => r.key === 'free').reduce((n, r) => n + r.requests, 0);
  const before = await usage();
  for (let i = 0; i < 10; i++) await (await ask(b, 'sk-free-key-1')).json();
  b.proc.kill('SIGTERM');
  await b.exited;
  b = null;
  assert.equal(await usage(), before + 10, 'every request B answered is in the shared ledger');
});

test('Redis restarted: the routers sync again without restarting', async () => {
  await redis.stop();
  await waitFor(() => /redis at .* unreachable/.test(a.stderr()), 10000, 'A notices');
  const alone = await ask(a, 'sk-free-key-1');
  assert.equal(alone.status, 200, 'requests go on while Redis is away');
  await alone.json();
  const syncedBefore = (a.stderr().match(/cluster: in sync through redis/g) ?? []).length;
  redis = await startRedis(redisPort);
  await waitFor(() => (a.stderr().match(/cluster: in sync through redis/g) ?? []).length > syncedBefore, 10000, 'A in sync again');
  const counted = await ask(a, 'sk-limited-key-1');
  await counted.text();
  await sleep(300);
  const keys = execFileSync('redis-cli', ['-p', String(redisPort), 'KEYS', 'plexus:*']).toString();
  assert.match(keys, /plexus:ttft/, "A's time-to-first-token measures, for the other routers");
  assert.match(keys, /plexus:rl:limited:/, 'A pushes its counts to the new Redis');
  assert.match(keys, /plexus:budget:budgeted:spent_micros/);
});
