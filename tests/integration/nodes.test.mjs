// The node network end to end: a real router with a node port and real plexus-node processes
// (demo backends), killed, frozen, drained and restarted the way real machines fail.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { chat, demoKey, parseSse, readRest, sseEvents, user } from './support/plexus.mjs';
import {
  adminKey, freePort, listNodes, listeningPorts, networkConfig, nodeToken, startNode, startRouter, waitFor,
} from './support/nodes.mjs';

const fast = ['--backend', 'demo', '--backend-options', '{"tokens_per_second": 100000, "first_token_ms": 0}', '--max-concurrency', '16'];
const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});
async function router(config = networkConfig(), options) {
  const r = await startRouter(config, options);
  cleanup.push(() => r.stop());
  return r;
}
async function node(r, options) {
  const n = await startNode(r, options);
  cleanup.push(() => n.stop());
  return n;
}

// A node that has joined has not necessarily granted its first credit yet: until the router has
// it, the node takes no order. Tests that compare nodes wait for both.
async function withCredit(r, ids) {
  await waitFor(async () => {
    const listed = await listNodes(r);
    return ids.every((id) => listed.some((n) => n.id === id && n.capacity.free_slots > 0));
  }, 10000, `credit from ${ids.join(', ')}`);
}

describe('a pull node', () => {
  it('joins, serves whole and streamed answers, and listens on no port', async () => {
    const r = await router();
    const n = await node(r, { name: 'gpu-a', args: fast });
    const whole = await chat(r.url, { model: 'demo', messages: user('hello'), max_tokens: 8 });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('x-plexus-node'), 'gpu-a@lab');
    const body = await whole.json();
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.usage.completion_tokens, 8);

    const streamed = await chat(r.url, { model: 'demo', messages: user('hello'), max_tokens: 5, stream: true });
    assert.equal(streamed.status, 200);
    const events = await sseEvents(streamed);
    assert.equal(events.at(-1), '[DONE]');
    const deltas = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.ok(deltas.every((d) => d.object === 'chat.completion.chunk'));
    assert.equal(deltas.filter((d) => d.choices[0]?.delta?.content).length, 5);

    assert.deepEqual(listeningPorts(n.proc.pid), [], 'plexus-node listens on no port');
  });

  it('shows in /v1/nodes (admin key only) with its models, prices and GPUs', async () => {
    const r = await router();
    // A recorded nvidia-smi answer, from a fake nvidia-smi first on the node's PATH.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-smi-'));
    fs.writeFileSync(path.join(bin, 'nvidia-smi'),
      '#!/bin/sh\nprintf "0, NVIDIA H100 80GB HBM3, 37, 1234, 81559, 41\\n1, NVIDIA H100 80GB HBM3, [N/A], 20, 81559, 35\\n"\n',
      { mode: 0o755 });
    await node(r, {
      name: 'gpu-b', args: [...fast, '--region', 'eu-west', '--price-in', '0.25', '--price-out', '0.75'],
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    const denied = await fetch(`${r.url}/v1/nodes`, { headers: { authorization: `Bearer ${demoKey}` } });
    assert.equal(denied.status, 401);
    const [entry] = await listNodes(r);
    assert.equal(entry.id, 'gpu-b@lab');
    assert.equal(entry.kind, 'pull');
    assert.equal(entry.region, 'eu-west');
    assert.deepEqual(entry.groups, ['public']);
    assert.equal(entry.health, 'healthy');
    assert.match(entry.agent, /^plexus-node\//);
    assert.deepEqual(entry.models.map((m) => [m.id, m.hot, m.price.input_per_1k, m.price.output_per_1k]),
      [['demo', true, 0.25, 0.75]]);
    assert.deepEqual(entry.gpus, [
      { index: 0, name: 'NVIDIA H100 80GB HBM3', utilization_percent: 37, memory_used_mib: 1234, memory_total_mib: 81559, temperature_c: 41 },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', utilization_percent: null, memory_used_mib: 20, memory_total_mib: 81559, temperature_c: 35 },
    ]);
    const models = await (await fetch(`${r.url}/v1/models`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
    assert.deepEqual(models.data.map((m) => m.id), ['demo']);
  });

  it('is refused with a wrong token or an API key; a node token is refused on the API', async () => {
    const r = await router();
    const wrong = await node(r, { name: 'intruder', token: 'nt-not-a-token', args: fast, join: false });
    await waitFor(() => /refused this node/.test(wrong.stderr()), 5000, 'the refusal');
    const withKey = await node(r, { name: 'key-as-token', token: demoKey, args: fast, join: false });
    await waitFor(() => /refused this node/.test(withKey.stderr()), 5000, 'the refusal');
    assert.deepEqual(await listNodes(r), []);
    const res = await chat(r.url, { model: 'demo', messages: user('x') }, { key: nodeToken });
    assert.equal(res.status, 401);
  });
});

describe('when nodes fail', () => {
  it('an order whose node dies before its first chunk goes to another node, unnoticed', async () => {
    const r = await router();
    const slow = await node(r, { name: 'dies', args: ['--backend', 'demo', '--backend-options', '{"first_token_ms": 5000}'] });
    await node(r, { name: 'lives', args: fast });
    const pending = chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 4, stream: true });
    await waitFor(async () => (await listNodes(r)).find((n) => n.id === 'dies@lab')?.in_flight === 1, 5000, 'the order on dies');
    await slow.stop('SIGKILL');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-plexus-node'), 'lives@lab');
    const events = await sseEvents(res);
    assert.equal(events.at(-1), '[DONE]');
    assert.ok(events.slice(0, -1).every((e) => !JSON.parse(e).error), 'no error event');
  });

  it('an order whose node dies goes to a node that joined after the request arrived', async () => {
    const r = await router();
    const slow = await node(r, { name: 'first', args: ['--backend', 'demo', '--backend-options', '{"first_token_ms": 5000}'] });
    const pending = chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 4 });
    await waitFor(async () => (await listNodes(r)).find((n) => n.id === 'first@lab')?.in_flight === 1, 5000, 'the order on first');
    await node(r, { name: 'late', args: fast });
    await slow.stop('SIGKILL');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-plexus-node'), 'late@lab');
    assert.equal((await res.json()).usage.completion_tokens, 4);
  });

  it('a stream whose node dies mid-way ends with an error event and [DONE]', async () => {
    const r = await router();
    const n = await node(r, { name: 'midway', args: ['--backend', 'demo', '--backend-options', '{"tokens_per_second": 20}'] });
    const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 200, stream: true });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('"content":" ')) text += new TextDecoder().decode((await reader.read()).value);
    await n.stop('SIGKILL');
    const events = parseSse(await readRest(reader, text));
    assert.equal(events.at(-1), '[DONE]');
    const last = JSON.parse(events.at(-2));
    assert.equal(last.error.code, 'node_lost');
    // What was delivered is what the access log counts (the node never reported its usage).
    const delivered = events.slice(0, -2).filter((e) => JSON.parse(e).choices?.[0]?.delta?.content).length;
    const line = await waitFor(() => r.stderr().split('\n').find((l) => l.includes(' access ') && l.includes('error=node_lost')), 5000, 'the access line');
    assert.match(line, new RegExp(`completion_tokens=${delivered} usage=estimated`));
  });

  it('a frozen node leaves rotation within the liveness bound and comes back when it wakes', async () => {
    const r = await router();
    const frozen = await node(r, { name: 'frozen', args: fast });
    await node(r, { name: 'awake', args: fast });
    frozen.proc.kill('SIGSTOP');
    await waitFor(async () => (await listNodes(r)).every((n) => n.id !== 'frozen@lab'), 10000, 'frozen to leave');
    for (let i = 0; i < 20; i++) {
      const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 2 });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-plexus-node'), 'awake@lab');
      await res.text();
    }
    frozen.proc.kill('SIGCONT');
    await waitFor(async () => (await listNodes(r)).some((n) => n.id === 'frozen@lab'), 15000, 'frozen to rejoin');
  });

  it('a client that leaves cancels its order: the node stops generating and frees the slot', async () => {
    const r = await router();
    await node(r, { name: 'stopper', args: ['--backend', 'demo', '--backend-options', '{"tokens_per_second": 20}', '--max-concurrency', '2'] });
    const abort = new AbortController();
    const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 400, stream: true }, { signal: abort.signal });
    const reader = res.body.getReader();
    await reader.read();
    await waitFor(async () => (await listNodes(r))[0]?.reported_in_flight === 1, 5000, 'the node to report the order');
    abort.abort();
    // 400 tokens at 20 a second would take 20 s: the node reports nothing in flight long before.
    const entry = await waitFor(async () => {
      const [e] = await listNodes(r);
      return e?.reported_in_flight === 0 && e.in_flight === 0 && e.capacity.free_slots === 2 ? e : null;
    }, 5000, 'the order to stop');
    assert.equal(entry.health, 'healthy');
  });

  it('nodes come back by themselves when the router restarts', async () => {
    const nodePort = await freePort();
    const config = networkConfig();
    const first = await router(config, { nodePort });
    await node(first, { name: 'faithful', args: fast });
    await first.stop();
    const second = await router(config, { nodePort });
    await waitFor(async () => (await listNodes(second)).some((n) => n.id === 'faithful@lab'), 15000, 'the node to rejoin');
    const res = await chat(second.url, { model: 'demo', messages: user('again'), max_tokens: 3 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-plexus-node'), 'faithful@lab');
  });

  it('SIGTERM drains: the stream in flight finishes, then the node leaves', async () => {
    const r = await router();
    const n = await node(r, { name: 'leaving', args: ['--backend', 'demo', '--backend-options', '{"tokens_per_second": 50}'] });
    const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 30, stream: true });
    assert.equal(res.status, 200);
    await waitFor(async () => (await listNodes(r))[0]?.in_flight === 1, 5000, 'the order');
    n.proc.kill('SIGTERM');
    const events = await sseEvents(res);
    assert.equal(events.at(-1), '[DONE]');
    assert.ok(events.slice(0, -1).every((e) => !JSON.parse(e).error), 'finished normally');
    assert.equal((await n.exited).code, 0);
    await waitFor(async () => (await listNodes(r)).length === 0, 5000, 'the node to leave');
  });
});

describe('plexus-node itself', () => {
  it('--help, missing settings and a bad config file get clear answers', async () => {
    const { execFileSync, spawnSync } = await import('node:child_process');
    const { nodeBin } = await import('./support/nodes.mjs');
    assert.match(execFileSync(nodeBin, ['--help'], { encoding: 'utf8' }), /--router HOST:PORT/);
    const missing = spawnSync(nodeBin, ['--token', 'x'], { encoding: 'utf8' });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--router HOST:PORT is required/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'node-cfg-')), 'node.json');
    fs.writeFileSync(file, JSON.stringify({ router: '127.0.0.1:1', token: 't', max_concurrency: 0 }));
    const bad = spawnSync(nodeBin, ['--config', file], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.ok(bad.stderr.includes(`${file}: max_concurrency: expected a number from 1`), bad.stderr);
    fs.writeFileSync(file, JSON.stringify({ router: '127.0.0.1:1', token: 't', colour: 'red' }));
    const unknown = spawnSync(nodeBin, ['--config', file], { encoding: 'utf8' });
    assert.match(unknown.stderr, /colour: unknown key/);
  });
});

describe('the auction', () => {
  it('a node that bids live wins with a bid below a cheaper advertised price, and is logged at its bid', async () => {
    const r = await router(networkConfig({
      keys: [{ id: 'admin', key: adminKey, admin: true }, { id: 'demo', key: 'sk-plexus-demo', routing_policy: 'auction' }],
      routing: { auction_bid_window_ms: 1000 },  // bids come at once; the window only bounds a stretched wait
    }));
    // "steady" advertises 0.8 and does not bid; "bidder" advertises 1.0 but bids half while idle.
    await node(r, { name: 'steady', args: [...fast, '--price-in', '0.8', '--price-out', '0.8'] });
    await node(r, { name: 'bidder', args: [...fast, '--price-in', '1.0', '--price-out', '1.0', '--live-bids'] });
    await withCredit(r, ['steady@lab', 'bidder@lab']);  // it failed on a bidder whose credit was still on its way
    for (let i = 0; i < 3; i++) {
      const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 2 });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-plexus-node'), 'bidder@lab');
      await res.text();
    }
    const line = await waitFor(() => r.stderr().split('\n').find((l) => l.includes(' access ') && l.includes('node=bidder@lab')), 5000, 'the access line');
    assert.match(line, /price_in=0\.5 price_out=0\.5/);
  });

  it('without live bids, the lowest advertised price wins', async () => {
    const r = await router(networkConfig({
      keys: [{ id: 'admin', key: adminKey, admin: true }, { id: 'demo', key: 'sk-plexus-demo', routing_policy: 'auction' }],
    }));
    await node(r, { name: 'steady', args: [...fast, '--price-in', '0.8', '--price-out', '0.8'] });
    await node(r, { name: 'dear', args: [...fast, '--price-in', '1.0', '--price-out', '1.0'] });
    await withCredit(r, ['steady@lab', 'dear@lab']);
    const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 2 });
    assert.equal(res.headers.get('x-plexus-node'), 'steady@lab');
  });
});

describe('plexus-node on a terminal', () => {
  it('keeps one status line up to date', async () => {
    const r = await router();
    const { spawn } = await import('node:child_process');
    const { nodeBin } = await import('./support/nodes.mjs');
    // script(1) gives the node a pseudo-terminal, as a person's shell would.
    const cmd = `${nodeBin} --router 127.0.0.1:${r.nodePort} --token ${nodeToken} --name tty --backend demo --backend-options '{"first_token_ms":0}'`;
    const proc = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanup.push(async () => proc.kill('SIGKILL'));
    let screen = '';
    proc.stdout.on('data', (d) => (screen += d));
    await waitFor(async () => (await listNodes(r)).some((n) => n.id === 'tty@lab'), 10000, 'the node to join');
    const res = await chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 3 });
    assert.equal(res.status, 200);
    await waitFor(() => /\r\x1b\[Ktty@lab \| demo \| 0 running \| 1 served/.test(screen), 5000, `the status line:\n${screen}`);
  });
});

describe('capacity and groups', () => {
  it('requests wait for a busy node in a bounded queue; beyond it, 429 nodes_busy with Retry-After', async () => {
    const config = networkConfig();
    config.nodes.queue_limit = 1;
    const r = await router(config);
    await node(r, { name: 'single', args: ['--backend', 'demo', '--backend-options', '{"tokens_per_second": 40}', '--max-concurrency', '1'] });
    const body = { model: 'demo', messages: user('hi'), max_tokens: 20 };
    const results = await Promise.all([0, 1, 2].map(() => chat(r.url, body).then(async (res) => [res.status, await res.json(), res.headers.get('retry-after')])));
    const statuses = results.map(([s]) => s).sort();
    assert.deepEqual(statuses, [200, 200, 429]);
    const [, refused, retryAfter] = results.find(([s]) => s === 429);
    assert.equal(refused.error.code, 'nodes_busy');
    assert.equal(retryAfter, '1');
  });

  it('a node\'s whole concurrency is usable round after round (freed slots come back)', async () => {
    const r = await router();
    await node(r, { name: 'rounds', args: ['--backend', 'demo', '--backend-options', '{"first_token_ms": 0, "tokens_per_second": 20}', '--max-concurrency', '4'] });
    for (let round = 0; round < 3; round++) {
      const responses = Array.from({ length: 4 }, () => chat(r.url, { model: 'demo', messages: user('hi'), max_tokens: 6, stream: true }));
      // All four run at once on the node (none waits in the router's queue for a slot).
      await waitFor(async () => (await listNodes(r))[0]?.in_flight === 4, 5000, `four in flight in round ${round}`);
      for (const res of await Promise.all(responses)) assert.equal((await sseEvents(res)).at(-1), '[DONE]');
    }
  });

  it('keeps groups apart: a key reaches only nodes its group may use (1,000 requests)', async () => {
    const config = networkConfig({
      keys: [
        { id: 'admin', key: adminKey, admin: true },
        { id: 'ka', key: 'sk-group-a-key', group: 'a' },
        { id: 'kb', key: 'sk-group-b-key', group: 'b' },
        { id: 'kc', key: 'sk-group-c-key', group: 'c' },
      ],
      node_tokens: [
        { id: 'lab', token: nodeToken, groups: ['a'] },
        { id: 'other', token: 'nt-other-group-token', groups: ['b'] },
      ],
    });
    const r = await router(config);
    await node(r, { name: 'for-a', args: fast });
    const b = await startNode(r, { name: 'for-b', token: 'nt-other-group-token', args: fast });
    cleanup.push(() => b.stop());
    const expected = { 'sk-group-a-key': 'for-a@lab', 'sk-group-b-key': 'for-b@other' };
    const keys = Object.keys(expected);
    let next = 0;
    const seen = { 'for-a@lab': 0, 'for-b@other': 0 };
    async function worker() {
      while (next < 1000) {
        const key = keys[next++ % 2];
        const res = await chat(r.url, { model: 'demo', messages: user('x'), max_tokens: 1 }, { key });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-plexus-node'), expected[key]);
        seen[res.headers.get('x-plexus-node')]++;
        await res.text();
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker));
    assert.deepEqual(seen, { 'for-a@lab': 500, 'for-b@other': 500 });
    const outsider = await chat(r.url, { model: 'demo', messages: user('x') }, { key: 'sk-group-c-key' });
    assert.equal(outsider.status, 404);
  });
});
