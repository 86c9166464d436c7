// Reloading the whole config while the router serves (POST /admin/reload and SIGHUP): keys,
// upstreams, node tokens, plugins and routing change at once, a stream in flight finishes whole,
// and an invalid file is refused with its file and key path while the old config keeps running.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { startNode, startRouter, waitFor } from './support/nodes.mjs';
import { chat, parseSse, readRest, user } from './support/plexus.mjs';
import { testThreads } from './support/plexus.mjs';

const admin = 'sk-admin-reload-1';
let alpha, beta, router, file, dir, plugin;

function config({ keys, upstreams, tokens, header, extra = {} }) {
  return {
    listen: '127.0.0.1:0',
    ...(testThreads !== undefined ? { threads: testThreads } : {}),
    keys: [{ id: 'admin', key: admin, admin: true }, ...keys],
    upstreams,
    nodes: { listen: '127.0.0.1:0', heartbeat_interval_ms: 200, liveness_timeout_ms: 800 },
    node_tokens: tokens,
    plugins: [{ name: 'stamp', type: 'lua', path: plugin, config: { version: header } }],
    log: { level: 'info', access_log: true },
    ...extra,
  };
}
const write = (c) => fs.writeFileSync(file, JSON.stringify(c, null, 2));
const reload = () => fetch(`${router.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });

before(async () => {
  alpha = await startFakeOpenAI({ name: 'alpha' });
  beta = await startFakeOpenAI({ name: 'beta' });
  dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'plexus-reload-'));
  plugin = path.join(dir, 'stamp.lua');
  fs.writeFileSync(plugin, 'function on_complete(r, ctx) ctx:add_header("x-config", plexus.config.version) end\n');
  file = path.join(dir, 'plexus.json');
  write(config({
    keys: [{ id: 'old', key: 'sk-old-key-1' }],
    upstreams: [{ name: 'alpha', provider: 'openai', url: alpha.url, models: ['first', 'slow'] }],
    tokens: [{ id: 'lab', token: 'nt-old-token-1', groups: ['public'] }],
    header: 'one',
  }));
  router = await startRouter(file);
});
after(async () => {
  await router?.stop();
  await alpha?.close();
  await beta?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('keys, upstreams, node tokens and plugins change together; the stream in flight finishes whole', async () => {
  const oldNode = await startNode(router, { name: 'gpu-old', token: 'nt-old-token-1' });
  const before = await chat(router.url, { model: 'first', messages: user('hi') }, { key: 'sk-old-key-1' });
  assert.equal(before.status, 200);
  assert.equal(before.headers.get('x-config'), 'one');
  await before.json();

  // A stream under way: 20 chunks, 20 ms apart, from the upstream the reload removes.
  const stream = await chat(router.url, { model: 'slow', messages: user('long'), stream: true }, { key: 'sk-old-key-1' });
  const reader = stream.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done);

  write(config({
    keys: [{ id: 'new', key: 'sk-new-key-1', rpm: 100 }],
    upstreams: [{ name: 'beta', provider: 'openai', url: beta.url, models: ['second'] }],
    tokens: [{ id: 'lab2', token: 'nt-new-token-1', groups: ['public'] }],
    header: 'two',
    extra: { routing: { policy: 'latency' } },
  }));
  const res = await reload();
  const report = await res.json();
  assert.equal(res.status, 200, JSON.stringify(report));
  assert.equal(report.reloaded, true);
  assert.deepEqual(report.upstreams, ['beta']);
  assert.deepEqual(report.restart_required, []);

  const rest = await readRest(reader, new TextDecoder().decode(first.value));
  const events = parseSse(rest);
  assert.equal(events.at(-1), '[DONE]', 'the stream that began before the reload ends whole');
  assert.equal(events.filter((e) => e !== '[DONE]' && JSON.parse(e).choices?.[0]?.delta?.content).length, 20);

  assert.equal((await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-old-key-1' })).status, 401, 'a removed key stops working');
  const after = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-new-key-1' });
  assert.equal(after.status, 200);
  assert.equal(after.headers.get('x-plexus-node'), 'beta');
  assert.equal(after.headers.get('x-config'), 'two', "the plugin's new config");
  assert.equal(after.headers.get('x-ratelimit-limit-requests'), '100', "the new key's limits");
  await after.json();
  const gone = await chat(router.url, { model: 'first', messages: user('hi') }, { key: 'sk-new-key-1' });
  assert.equal(gone.status, 404, 'a removed upstream serves nothing');
  await gone.text();

  // The node whose token was removed is cut off; one with the new token joins.
  await waitFor(() => /token was removed/.test(oldNode.stderr()), 5000, `the old node cut off:\n${oldNode.stderr()}`);
  await oldNode.stop();
  const newNode = await startNode(router, { name: 'gpu-new', token: 'nt-new-token-1' });
  await newNode.stop();
});

test('an invalid config is refused with its file and key path; the running one stays', async () => {
  const good = fs.readFileSync(file, 'utf8');
  const broken = JSON.parse(good);
  broken.upstreams[0].url = 'ftp://nowhere';
  write(broken);
  const res = await reload();
  assert.equal(res.status, 422);
  const body = await res.json();
  assert.equal(body.reloaded, false);
  assert.equal(body.error.code, 'invalid_config');
  assert.match(body.error.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: upstreams\\[0\\]\\.url`));
  // SIGHUP: the same refusal, in the log.
  router.proc.kill('SIGHUP');
  await waitFor(() => /config reload refused, the running config stays: .*upstreams\[0\]\.url/.test(router.stderr()), 5000, 'the refusal logged');
  const still = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-new-key-1' });
  assert.equal(still.status, 200, 'the old config keeps serving');
  await still.json();
  fs.writeFileSync(file, good);
});

test('a Lua plugin whose script cannot be read is refused, naming its entry; the running one stays', async () => {
  const good = fs.readFileSync(file, 'utf8');
  const broken = JSON.parse(good);
  broken.plugins[0].path = path.join(dir, 'gone.lua');
  write(broken);
  const res = await reload();
  assert.equal(res.status, 422);
  const body = await res.json();
  assert.equal(body.error.code, 'invalid_config');
  assert.match(body.error.message, /plugins\[0\] \(stamp, .*gone\.lua\): cannot read the file/);
  const still = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-new-key-1' });
  assert.equal(still.status, 200, 'the old config keeps serving');
  assert.ok(still.headers.get('x-config'), 'with its plugin');
  await still.json();
  fs.writeFileSync(file, good);
});

test('what only a restart changes is named in the report; SIGHUP reloads the rest', async () => {
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  c.limits = { max_body_bytes: 65536 };
  c.keys.push({ id: 'late', key: 'sk-late-key-1' });
  write(c);
  const res = await reload();
  const report = await res.json();
  assert.equal(res.status, 200);
  assert.deepEqual(report.restart_required, ['limits']);
  c.keys.push({ id: 'later', key: 'sk-later-key-1' });
  write(c);
  router.proc.kill('SIGHUP');
  await waitFor(async () => (await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-later-key-1' })).status === 200,
    5000, 'the key added by SIGHUP');
});

test("a key that gains a budget on reload starts from what the ledger says it spent; a lifted budget is lifted", async () => {
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  c.upstreams[0].price = { input_per_1k: 10, output_per_1k: 10 };
  c.keys.push({ id: 'spender', key: 'sk-spender-key-1' });
  write(c);
  assert.equal((await reload()).status, 200);
  let spent = 0;
  for (let i = 0; i < 3; i++) {
    const res = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-spender-key-1' });
    spent += (await res.json()).usage.cost;
  }
  await new Promise((r) => setTimeout(r, 500));  // the ledger commits (flush_ms 200)
  c.keys.find((k) => k.id === 'spender').budget = spent / 2;
  write(c);
  assert.equal((await reload()).status, 200);
  const refused = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-spender-key-1' });
  assert.equal(refused.status, 402, 'what it spent before the budget counts against it');
  await refused.text();
  delete c.keys.find((k) => k.id === 'spender').budget;
  write(c);
  assert.equal((await reload()).status, 200);
  const free = await chat(router.url, { model: 'second', messages: user('hi') }, { key: 'sk-spender-key-1' });
  assert.equal(free.status, 200, 'the budget taken out of the file no longer applies');
  await free.json();
});
