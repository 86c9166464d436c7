// Routing decisions the adapters inform: capabilities (tools, vision, JSON mode, context length)
// and a backend's 429 Retry-After.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, startPlexus, user } from './support/plexus.mjs';

let alpha, beta, plexus;
before(async () => {
  alpha = await startFakeOpenAI({ name: 'alpha' });
  beta = await startFakeOpenAI({ name: 'beta' });
  plexus = await startPlexus(baseConfig([
    { name: 'no-tools', provider: 'openai', url: alpha.url, models: ['gpt-x'], capabilities: { tools: false } },
    { name: 'full', provider: 'openai', url: beta.url, models: ['gpt-x'] },
    { name: 'text-only', provider: 'openai', url: alpha.url, models: ['small'], capabilities: { vision: false, json_mode: false, context_length: 100 } },
    { name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 0, tokens_per_second: 1000 } },
    { name: 'limited', provider: 'openai', url: alpha.url, models: [{ id: 'busy', upstream_model: 'rate-limited' }] },
    { name: 'spare', provider: 'openai', url: beta.url, models: [{ id: 'busy', upstream_model: 'gpt-x' }] },
    { name: 'only-limited', provider: 'openai', url: alpha.url, models: [{ id: 'scarce', upstream_model: 'rate-limited' }] },
  ]));
});
after(async () => {
  await plexus?.stop();
  await alpha?.close();
  await beta?.close();
});

const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];

test('a request with tools skips the upstream without tools; one without goes first in order', async () => {
  const withTools = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), tools });
  assert.equal(withTools.headers.get('x-plexus-node'), 'full');
  await withTools.text();
  const plain = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(plain.headers.get('x-plexus-node'), 'no-tools');
  await plain.text();
});

test('no upstream can serve it: a 400 naming the feature, and no backend is called', async () => {
  const calls = alpha.state.requests.length + beta.state.requests.length;
  const cases = [
    [{ model: 'demo', messages: user('hi'), tools }, 'tools', /supports tools/],
    [{ model: 'small', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] }, 'messages', /images \(vision\)/],
    [{ model: 'small', messages: user('hi'), response_format: { type: 'json_object' } }, 'response_format', /JSON mode/],
    [{ model: 'small', messages: user('x'.repeat(1000)) }, 'messages', /context length \(about 250 tokens with max_tokens; the largest is 100\)/],
  ];
  for (const [body, param, message] of cases) {
    const res = await chat(plexus.url, body);
    assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
    const err = (await res.json()).error;
    assert.equal(err.code, 'unsupported_feature');
    assert.equal(err.param, param);
    assert.match(err.message, message);
  }
  assert.equal(alpha.state.requests.length + beta.state.requests.length, calls);
  const ok = await chat(plexus.url, { model: 'small', messages: user('short') });
  assert.equal(ok.status, 200, 'within its limits, the same upstream serves');
  await ok.text();
});

test("when the last node answers 429, the client gets 429 with that backend's Retry-After", async () => {
  const res = await chat(plexus.url, { model: 'scarce', messages: user('hi') });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '30');
  assert.match((await res.json()).error.message, /Rate limit reached/);
});

test("a backend's 429 with Retry-After fails over now and keeps that node out while it cools down", async () => {
  const before = alpha.state.requests.filter((r) => r.body.model === 'rate-limited').length;
  const limitedCalls = () => alpha.state.requests.filter((r) => r.body.model === 'rate-limited').length - before;
  const first = await chat(plexus.url, { model: 'busy', messages: user('hi') });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-plexus-node'), 'spare');
  await first.text();
  assert.equal(limitedCalls(), 1);
  for (let i = 0; i < 3; i++) {
    const next = await chat(plexus.url, { model: 'busy', messages: user('hi') });
    assert.equal(next.headers.get('x-plexus-node'), 'spare');
    await next.text();
  }
  assert.equal(limitedCalls(), 1, 'the cooling node was not asked again');
});
