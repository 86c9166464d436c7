// The routing simulation: the real router in front of fake nodes with a latency distribution, a
// failure rate and a simulated prefix cache (a node answers fast when it has seen the prompt's
// prefix lately, slower when it must compute it), driven by closed-loop clients on loopback.
//   node bench/routing_sim.mjs [out-dir]        (bench/routing_sim.sh runs it and draws the plot)
// Two scenarios:
//   degrade  4 nodes, policy balanced; node-0 becomes 8x slower at 10 s and heals at 25 s:
//            its share of traffic, second by second (CSV for the plot)
//   prefix   8 nodes (one flaky), 16 conversations with long shared system prompts: latency P50/P95,
//            success ratio, cache hit ratio and the busiest node against the mean, balanced (with
//            prefix affinity) vs round_robin
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, '../build/plexus');
const outDir = process.argv[2] || path.join(here, '../build/routing-sim');
fs.mkdirSync(outDir, { recursive: true });
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A fake node: OpenAI-compatible whole answers; TTFT = base (x slowdown) when the prompt's prefix
// is in its cache (the last `cacheSize` prefixes it served), base + missCost otherwise.
function fakeNode(name, { baseMs = 20, missCostMs = 80, cacheSize = 4, failureRate = 0 } = {}) {
  const node = { name, slowdown: 1, served: 0, hits: 0, inFlight: 0, maxInFlight: 0, cache: [] };
  node.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const request = JSON.parse(body);
      if (Math.random() < failureRate) {  // a flaky backend: a 500 before any token
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: { message: 'simulated failure', type: 'server_error', param: null, code: null } }));
      }
      const prefix = crypto.createHash('sha1').update(request.messages[0].content).digest('hex');
      const hit = node.cache.includes(prefix);
      node.cache = [prefix, ...node.cache.filter((p) => p !== prefix)].slice(0, cacheSize);
      node.served++;
      if (hit) node.hits++;
      node.inFlight++;
      node.maxInFlight = Math.max(node.maxInFlight, node.inFlight);
      const jitter = 0.8 + Math.random() * 0.4;
      await sleep((baseMs + (hit ? 0 : missCostMs)) * node.slowdown * jitter);
      node.inFlight--;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-sim', object: 'chat.completion', created: 1, model: request.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 100, completion_tokens: 1, total_tokens: 101 } }));
    });
  });
  return new Promise((resolve) => node.server.listen(0, '127.0.0.1', () => {
    node.url = `http://127.0.0.1:${node.server.address().port}/v1`;
    resolve(node);
  }));
}

async function startRouter(nodes, routing) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-sim-'));
  const file = path.join(dir, 'plexus.json');
  fs.writeFileSync(file, JSON.stringify({
    listen: '127.0.0.1:0', threads: 1, limits: { max_inflight: 100000 },
    keys: [{ id: 'sim', key: 'sk-simulation' }],
    upstreams: nodes.map((n) => ({ name: n.name, provider: 'openai', url: n.url, models: ['sim'], status_interval_s: 0 })),
    routing, log: { level: 'warn', access_log: false },
  }));
  const proc = spawn(bin, ['--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
  });
  return { proc, port };
}

function ask(port, messages) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-simulation' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, node: res.headers['x-plexus-node'] }));
    });
    req.on('error', () => resolve({ status: 0 }));
    req.end(JSON.stringify({ model: 'sim', messages, max_tokens: 1 }));
  });
}

// Closed-loop clients for `seconds`; `each(second)` runs once a second; returns per-second counts.
async function drive(port, { clients, seconds, conversation, each, latencies = [], outcomes = { ok: 0, failed: 0 } }) {
  const perSecond = [];
  const start = Date.now();
  let stop = false;
  const ticker = (async () => {
    for (let s = 0; s < seconds; s++) {
      perSecond.push({});
      each?.(s);
      await sleep(start + (s + 1) * 1000 - Date.now());
    }
    stop = true;
  })();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; !stop; i++) {
      const began = performance.now();
      const r = await ask(port, conversation(c, i));
      latencies.push(performance.now() - began);
      outcomes[r.status === 200 ? 'ok' : 'failed']++;
      const bucket = perSecond[perSecond.length - 1];
      if (r.status === 200 && bucket) bucket[r.node] = (bucket[r.node] ?? 0) + 1;
    }
  }));
  await ticker;
  return perSecond;
}

const system = (k) => `System prompt ${k}. ${'You follow the operator\'s instructions to the letter. '.repeat(40)}`;

async function degrade() {
  const nodes = await Promise.all([0, 1, 2, 3].map((i) => fakeNode(`node-${i}`, { missCostMs: 0 })));
  const router = await startRouter(nodes, { policy: 'balanced', prefix_affinity: { enabled: false } });
  const seconds = 40;
  const perSecond = await drive(router.port, {
    clients: 16, seconds,
    conversation: (c, i) => [{ role: 'user', content: `question ${c}-${i}` }],
    each: (s) => {
      if (s === 10) nodes[0].slowdown = 8;
      if (s === 25) nodes[0].slowdown = 1;
    },
  });
  router.proc.kill('SIGKILL');
  nodes.forEach((n) => n.server.close());
  const share = perSecond.map((b) => {
    const total = Object.values(b).reduce((a, v) => a + v, 0) || 1;
    return nodes.map((n) => (b[n.name] ?? 0) / total);
  });
  fs.writeFileSync(path.join(outDir, 'degrade.csv'),
    `second,${nodes.map((n) => n.name).join(',')}\n${share.map((row, s) => `${s},${row.map((v) => v.toFixed(3)).join(',')}`).join('\n')}\n`);
  const firstLow = share.findIndex((row, s) => s >= 10 && row[0] < 0.1);
  const recovered = share.findIndex((row, s) => s >= 25 && row[0] >= 0.15);
  const mean = (from, to) => share.slice(from, to).reduce((a, r) => a + r[0], 0) / (to - from);
  console.log('## One node degrades (8x slower) at 10 s and heals at 25 s: its traffic share (4 nodes, balanced)\n');
  console.log('| seconds | 0-10 (healthy) | 10-25 (degraded) | 25-40 (healed) | below 10 % after | back to 15 % after |');
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(`| node-0 share | ${(100 * mean(0, 10)).toFixed(1)} % | ${(100 * mean(10, 25)).toFixed(1)} % | ${(100 * mean(25, 40)).toFixed(1)} % | ` +
    `${firstLow < 0 ? 'never' : `${firstLow - 10} s`} | ${recovered < 0 ? 'never' : `${recovered - 25} s`} |\n`);
  return { below10: firstLow < 0 ? Infinity : firstLow - 10, recovered: recovered >= 0 };
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
};

// 8 nodes; with `flaky`, node-7 fails 30 % of its requests (before any token), so failover and
// the breaker show in the success ratio and the tail.
async function prefix(policy, affinity, flaky = false) {
  const nodes = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    fakeNode(`node-${i}`, { cacheSize: 2, failureRate: flaky && i === 7 ? 0.3 : 0 })));
  const router = await startRouter(nodes, { policy, prefix_affinity: { enabled: affinity } });
  const latencies = [];
  const outcomes = { ok: 0, failed: 0 };
  await drive(router.port, {
    clients: 16, seconds: 15, latencies, outcomes,
    conversation: (c, i) => [{ role: 'system', content: system((c * 7 + i) % 16) }, { role: 'user', content: `q${i}` }],
  });
  router.proc.kill('SIGKILL');
  nodes.forEach((n) => n.server.close());
  const served = nodes.map((n) => n.served);
  const total = served.reduce((a, v) => a + v, 0);
  const hits = nodes.reduce((a, n) => a + n.hits, 0);
  return { policy: `${policy}${affinity ? ' + prefix affinity' : ''}`, hitRatio: hits / total, maxOverMean: Math.max(...served) / (total / nodes.length), total,
    p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), success: outcomes.ok / (outcomes.ok + outcomes.failed) };
}

const degraded = await degrade();
const table = (title, rows) => {
  console.log(`${title}\n`);
  console.log('| routing | requests answered by nodes | latency p50 / p95 (ms) | success ratio | cache hit ratio | busiest node / mean |');
  console.log('|---|---:|---|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.policy} | ${r.total} | ${r.p50.toFixed(1)} / ${r.p95.toFixed(1)} | ${(100 * r.success).toFixed(2)} % | ` +
      `${(100 * r.hitRatio).toFixed(1)} % | ${r.maxOverMean.toFixed(2)} |`);
  console.log();
};
const rows = [await prefix('balanced', true), await prefix('round_robin', false)];
table('## Shared prefixes: 8 nodes, 16 conversations, each node caching its last 2 prefixes', rows);
const flaky = [await prefix('balanced', true, true), await prefix('round_robin', false, true)];
table('## The same with node-7 failing 30 % of its requests before any token', flaky);
fs.writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify({ degraded, prefix: rows, flaky }, null, 2));
agent.destroy();
