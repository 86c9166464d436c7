// The embedded demo node: deterministic text that honours max_tokens, stop and seed, with real
// usage counts, through the real binary.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { baseConfig, chat, sseEvents, startPlexus, user } from './support/plexus.mjs';

let plexus;
before(async () => {
  plexus = await startPlexus(baseConfig([{ name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 1, tokens_per_second: 2000 } }]));
});
after(async () => plexus?.stop());

const ask = async (body) => (await chat(plexus.url, { model: 'demo', messages: user('Tell me about routers'), ...body })).json();

test('max_tokens cuts the answer with finish_reason length and exact usage', async () => {
  const r = await ask({ max_tokens: 5 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 5);
  assert.ok(r.usage.prompt_tokens > 0);
});

test('without max_tokens the answer ends naturally with stop', async () => {
  const r = await ask({});
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.match(r.choices[0].message.content, /\.$/);
});

test('the same seed gives the same text; another seed gives another', async () => {
  const a = await ask({ seed: 42, max_tokens: 20 });
  const b = await ask({ seed: 42, max_tokens: 20 });
  const c = await ask({ seed: 43, max_tokens: 20 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test('a stop sequence ends the answer before it, even across tokens', async () => {
  const full = (await ask({ seed: 5, max_tokens: 30 })).choices[0].message.content;
  const words = full.split(' ');
  const stop = `${words[2]} ${words[3]}`; // spans two tokens
  const r = await ask({ seed: 5, max_tokens: 30, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.ok(!r.choices[0].message.content.includes(stop));
});

test('streamed text equals the whole text, and usage counts the streamed tokens', async () => {
  const whole = await ask({ seed: 9, max_tokens: 15 });
  const res = await chat(plexus.url, { model: 'demo', messages: user('Tell me about routers'), seed: 9, max_tokens: 15, stream: true, stream_options: { include_usage: true } });
  const events = await sseEvents(res);
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  const content = chunks.flatMap((c) => c.choices).map((c) => c.delta.content ?? '');
  assert.equal(content.join(''), whole.choices[0].message.content);
  assert.equal(content.filter((t) => t !== '').length, 15, 'one chunk per token');
  assert.deepEqual(chunks.at(-1).usage, whole.usage);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
});
