// GET /metrics in Prometheus' text format, named after its conventions: requests by model, node
// and status; latency, time to first token and router overhead as histograms; tokens, spend,
// plugin errors; live gauges for nodes, queues and the ledger. Checked by Debian's promtool, and
// scraped by a real Prometheus server (Debian's prometheus package, which scripts/test.sh
// installs) whose query API then answers with what the router counted.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, freePort, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const run = promisify(execFile);
let fake, plexus, dir;
before(async () => {
  fake = await startFakeOpenAI({ name: 'metered' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-metrics-'));
  fs.writeFileSync(path.join(dir, 'throws.lua'), 'function on_request(ctx) error("boom") end\n');
  plexus = await startPlexus(writeConfig(baseConfig(
    [{ name: 'metered', provider: 'openai', url: fake.url, models: ['gpt-x', 'fail-500', 'slow'], price: { input_per_1k: 1, output_per_1k: 2 } }],
    { plugins: [{ name: 'throws', type: 'lua', path: path.join(dir, 'throws.lua'), on_error: 'open' }] },
  )));
  for (let i = 0; i < 3; i++) await (await chat(plexus.url, { model: 'gpt-x', messages: user('hi') })).json();
  await sseEvents(await chat(plexus.url, { model: 'slow', messages: user('hi'), stream: true }));
  await (await chat(plexus.url, { model: 'fail-500', messages: user('hi') })).text();
  await (await chat(plexus.url, { model: 'made-up-by-a-client', messages: user('hi') })).text();
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const scrape = async () => {
  const res = await fetch(`${plexus.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return res.text();
};
// One sample's value: the line `name{labels} value` whose labels include all of `labels`.
function value(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_:]+)(\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

test('requests, latency, overhead, tokens, spend and plugin errors are counted, by model, node and status', async () => {
  const text = await scrape();
  assert.equal(value(text, 'plexus_requests_total', { model: 'gpt-x', node: 'metered', code: '200' }), 3);
  assert.equal(value(text, 'plexus_requests_total', { model: 'slow', node: 'metered', code: '200' }), 1);
  assert.equal(value(text, 'plexus_requests_total', { model: 'fail-500', code: '502' }), 1);
  assert.equal(value(text, 'plexus_requests_total', { model: '-', node: '-', code: '404' }), 1, 'a made-up model is no label');
  assert.equal(value(text, 'plexus_request_duration_seconds_count', { model: 'gpt-x' }), 3);
  assert.equal(value(text, 'plexus_request_duration_seconds_bucket', { model: 'gpt-x', le: '+Inf' }), 3);
  assert.equal(value(text, 'plexus_time_to_first_token_seconds_count', { model: 'slow' }), 1);
  assert.ok(value(text, 'plexus_router_overhead_seconds_count') >= 4, 'every answered request measured its overhead');
  // Parsing, the plugin and routing run in the event that read the request: still measured.
  assert.ok(value(text, 'plexus_router_overhead_seconds_sum') > 0, 'the router\'s own time is not zero');
  assert.ok(value(text, 'plexus_tokens_total', { model: 'gpt-x', direction: 'prompt' }) > 0);
  assert.ok(value(text, 'plexus_tokens_total', { model: 'gpt-x', direction: 'completion' }) > 0);
  assert.ok(value(text, 'plexus_spend_total', { model: 'gpt-x' }) > 0);
  assert.equal(value(text, 'plexus_plugin_errors_total', { plugin: 'throws' }), 6, 'the failing plugin, once per request');
  assert.ok(!text.includes('made-up-by-a-client'));
  assert.equal(value(text, 'plexus_node_up', { node: 'metered' }), 1);
  assert.equal(value(text, 'plexus_node_in_flight', { node: 'metered' }), 0);
  assert.equal(value(text, 'plexus_inflight_requests'), 0);
  assert.equal(value(text, 'plexus_queued_requests'), 0);
  assert.ok(value(text, 'plexus_ledger_queued_rows') >= 0);
  // Buckets are cumulative and end with the count.
  const buckets = [...text.matchAll(/^plexus_request_duration_seconds_bucket\{model="gpt-x",le="([^"]+)"\} (\d+)$/gm)].map((m) => Number(m[2]));
  assert.ok(buckets.length > 5);
  assert.deepEqual([...buckets].sort((a, b) => a - b), buckets);
  assert.ok(!/sk-plexus|key=|hi\b/.test(text), 'no key and no prompt text in the metrics');
});

test("promtool check metrics finds nothing wrong", async () => {
  const text = await scrape();
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.stdin.end(text);
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 0, out);
  assert.equal(out.trim(), '', `promtool's remarks: ${out}`);
});

test('a real Prometheus scrapes the router, and its queries answer with what the router counted', async () => {
  const port = await freePort();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-prometheus-'));
  const target = new URL(plexus.url).host;
  fs.writeFileSync(path.join(work, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: plexus\n    static_configs:\n      - targets: ['${target}']\n`);
  await run('promtool', ['check', 'config', path.join(work, 'prometheus.yml')]);
  const prometheus = spawn('prometheus', [`--config.file=${path.join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(work, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prometheus.stderr.on('data', (d) => (log += d));
  try {
    const query = async (q) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => null);
      if (!res?.ok) return [];
      return (await res.json()).data.result;
    };
    let up = [], requests = [];
    for (let i = 0; i < 150 && !(up.length && up[0].value[1] === '1' && requests.length); i++) {
      await new Promise((r) => setTimeout(r, 200));
      up = await query('up{job="plexus"}');
      requests = await query('plexus_requests_total{model="gpt-x",code="200"}');
    }
    assert.equal(up[0]?.value[1], '1', `Prometheus did not scrape the router: ${log.slice(-2000)}`);
    assert.equal(requests[0].value[1], '3');
    assert.equal(requests[0].metric.node, 'metered');
    const p50 = await query('histogram_quantile(0.5, sum by (le) (plexus_request_duration_seconds_bucket))');
    assert.ok(Number(p50[0].value[1]) > 0, 'a latency quantile from the histogram');
  } finally {
    prometheus.kill('SIGTERM');
    await new Promise((r) => prometheus.on('close', r));
    fs.rmSync(work, { recursive: true, force: true });
  }
});
