// 1,000 mixed requests (whole answers, streams, streams the client drops, failovers from a
// failing node) through the real router: the ledger's sums equal the sum of the receipts, which
// equal what the clients were told they used; a dropped stream is billed for no less than the
// client read and no more than the answer held.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, startPlexus, user } from './support/plexus.mjs';

const adminKey = 'sk-sums-admin-key';
let good, bad, plexus;
before(async () => {
  good = await startFakeOpenAI({ name: 'good' });
  bad = await startFakeOpenAI({ name: 'bad' });
  bad.state.failing = true;  // every answer a 500: requests routed there fail over to good
  plexus = await startPlexus(baseConfig(
    [
      { name: 'bad', provider: 'openai', url: bad.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 1, output_per_1k: 3 } },
      { name: 'good', provider: 'openai', url: good.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 1, output_per_1k: 3 } },
    ],
    { keys: [{ id: 'demo', key: demoKey }, { id: 'admin', key: adminKey, admin: true }], routing: { policy: 'round_robin' },
      ledger: { flush_ms: 50 }, log: { level: 'warn', access_log: false } },
  ));
});
after(async () => {
  await plexus?.stop();
  await good?.close();
  await bad?.close();
});

async function whole(i) {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user(`whole ${i}`) });
  const body = await res.json();
  return { id: res.headers.get('x-request-id'), status: res.status, told: body.usage };
}

async function streamed(i) {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user(`stream ${i}`), stream: true, stream_options: { include_usage: true } });
  const text = await res.text();
  const usage = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6))).find((c) => c.usage)?.usage;
  return { id: res.headers.get('x-request-id'), status: res.status, told: usage };
}

async function dropped(i) {
  const controller = new AbortController();
  const res = await chat(plexus.url, { model: 'slow', messages: user(`drop ${i}`), stream: true }, { signal: controller.signal });
  const id = res.headers.get('x-request-id');
  const reader = res.body.getReader();
  let text = '';
  while ((text.match(/"content":"\d+ "/g) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  return { id, status: 499, read: (text.match(/"content":"\d+ "/g) ?? []).length };
}

test('1,000 mixed requests: the ledger, the receipts and the clients agree', { timeout: 240000 }, async () => {
  const kinds = [];
  for (let i = 0; i < 1000; i++) kinds.push(i % 10 < 7 ? whole : i % 10 < 9 ? streamed : dropped);
  const results = [];
  for (let i = 0; i < kinds.length; i += 25) results.push(...(await Promise.all(kinds.slice(i, i + 25).map((k, j) => k(i + j)))));
  assert.equal(results.length, 1000);
  for (const r of results) if (r.status !== 499) assert.equal(r.status, 200);

  await new Promise((r) => setTimeout(r, 500));  // the last flush
  const get = async (path) => (await fetch(`${plexus.url}${path}`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
  const rows = (await get('/v1/usage')).data;
  const ledger = rows.reduce((s, r) => ({ requests: s.requests + r.requests, in: s.in + r.prompt_tokens, out: s.out + r.completion_tokens, cost: s.cost + r.cost }),
                             { requests: 0, in: 0, out: 0, cost: 0 });
  assert.equal(ledger.requests, 1000);

  const keys = jose.createLocalJWKSet(await (await fetch(`${plexus.url}/.well-known/jwks.json`)).json());
  const receipts = { in: 0, out: 0, cost: 0 };
  let told = { in: 0, out: 0, cost: 0 };
  for (const r of results) {
    const { receipt } = await get(`/v1/receipts/${r.id}`);
    const { payload } = await jose.jwtVerify(receipt, keys);
    receipts.in += payload.prompt_tokens;
    receipts.out += payload.completion_tokens;
    receipts.cost += payload.cost;
    if (r.told) {
      assert.equal(payload.completion_tokens, r.told.completion_tokens, `${r.id}: the receipt says what the client was told`);
      assert.equal(payload.cost, r.told.cost);
      told = { in: told.in + r.told.prompt_tokens, out: told.out + r.told.completion_tokens, cost: told.cost + r.told.cost };
    } else {
      // Dropped: billed for at least what the client read, at most the 20 tokens the answer held.
      assert.ok(payload.completion_tokens >= r.read && payload.completion_tokens < 20, `${r.id}: ${payload.completion_tokens} vs read ${r.read}`);
      assert.equal(payload.usage_estimated, true);
    }
  }
  assert.equal(receipts.in, ledger.in);
  assert.equal(receipts.out, ledger.out);
  assert.ok(Math.abs(receipts.cost - ledger.cost) < 1e-6, `${receipts.cost} vs ${ledger.cost}`);
  const answered = results.filter((r) => r.told);
  assert.equal(answered.length, 900);
  assert.ok(bad.state.requests.length > 0, 'some requests went to the failing node first and failed over');
});
