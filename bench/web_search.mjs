// What the web plugin adds to time to first token: the real router with the plugin, a fake
// OpenAI backend and the fake SearxNG answering every search after a fixed delay D. N streamed
// requests with web search (model "gpt-x:online") and N without, alternated, one at a time; the
// time to the first SSE data event of each. The search itself costs D (plus the fake's timer
// slop, measured separately by asking the fake directly); the target is that the plugin adds
// nothing beyond it: added = D + at most 1 ms.
//   node bench/web_search.mjs [--n=200] [--delay=100] [--threads=T]
// Needs build/plexus and build/plugins/libplexus_web.so (PLEXUS_BIN / PLEXUS_PLUGIN_DIR override).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startFakeOpenAI } from '../tests/integration/support/fake_openai.mjs';
import { startFakeSearxng } from '../tests/integration/support/fake_searxng.mjs';
import { baseConfig, demoKey, repoRoot, startPlexus } from '../tests/integration/support/plexus.mjs';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const N = Number(args.n ?? 200);
const D = Number(args.delay ?? 100);
const threads = args.threads !== undefined ? Number(args.threads) : undefined;
const WARMUP = Math.min(10, N);
const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const ms = (x) => x.toFixed(2);

// Milliseconds from sending the request to the first complete "data: ..." event; then reads the rest.
async function ttft(url, body) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${demoKey}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let first = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (first === null && /(^|\n)data: [^\n]*\n\n/.test(text)) first = performance.now() - t0;
  }
  if (first === null) throw new Error('no SSE data event');
  if (!text.includes('data: [DONE]')) throw new Error('stream did not end with [DONE]');
  return { first, header: res.headers.get('x-plexus-web-search') };
}

// The fake's own answer time for a search, asked directly (node's HTTP client, keep-alive).
async function searchAlone(url, q) {
  const t0 = performance.now();
  const res = await fetch(`${url}/search?q=${encodeURIComponent(q)}&format=json`);
  await res.json();
  return performance.now() - t0;
}

const sx = await startFakeSearxng();
sx.setMode('slow', D);
const up = await startFakeOpenAI({ models: ['gpt-x'] });
const config = baseConfig([{ name: 'fake', provider: 'openai', url: up.url, models: ['gpt-x'] }], {
  log: { level: 'warn', access_log: false },
  plugins: [{ name: 'web', type: 'native', path: path.join(pluginDir, 'libplexus_web.so'), config: { search_url: sx.url, timeout_ms: Math.max(3000, D * 10) } }],
  ...(threads !== undefined ? { threads } : {}),
});
const plexus = await startPlexus(config);

const plain = [];
const web = [];
const alone = [];
try {
  for (let i = -WARMUP; i < N; i++) {
    const q = `benchmark question ${i + WARMUP}`;
    const a = await ttft(plexus.url, { model: 'gpt-x', messages: [{ role: 'user', content: q }], stream: true });
    const b = await ttft(plexus.url, { model: 'gpt-x:online', messages: [{ role: 'user', content: q }], stream: true });
    if (a.header !== null) throw new Error(`a plain request was searched: ${a.header}`);
    if (!b.header?.startsWith('ok;')) throw new Error(`the search did not succeed: ${b.header}`);
    const c = await searchAlone(sx.url, q);
    if (i < 0) continue;
    plain.push(a.first);
    web.push(b.first);
    alone.push(c);
  }
} finally {
  await plexus.stop();
  await up.close();
  await sx.close();
}

const row = (name, p50, p95) => `| ${name} | ${ms(p50)} | ${ms(p95)} |`;
const stat = (v) => [percentile(v, 50), percentile(v, 95)];
const [plain50, plain95] = stat(plain);
const [web50, web95] = stat(web);
const [alone50, alone95] = stat(alone);
const added50 = web50 - plain50;
const added95 = web95 - plain95;
console.log(`Web search TTFT: N=${N} sequential streamed requests each way (after ${WARMUP} warm-up pairs), search delay D=${D} ms, router threads=${config.threads ?? 'default'}\n`);
console.log('| measure | p50 (ms) | p95 (ms) |');
console.log('|---|---:|---:|');
console.log(row('TTFT without web search', plain50, plain95));
console.log(row('TTFT with web search', web50, web95));
console.log(row('fake SearxNG answer, asked directly', alone50, alone95));
console.log(row('added (with − without)', added50, added95));
console.log(row('added − D', added50 - D, added95 - D));
console.log(row('added − direct search time', added50 - alone50, added95 - alone95));
console.log(`\nTarget: added = D + ≤ 1 ms → p50 ${added50 - D <= 1 ? 'met' : 'NOT met'} (${ms(added50 - D)} ms over D), p95 ${added95 - D <= 1 ? 'met' : 'NOT met'} (${ms(added95 - D)} ms over D).`);
console.log('(p95 rows of differences are differences of the p95s. "added − direct search time" takes out the fake\'s timer slop and one HTTP round trip on loopback.)');
