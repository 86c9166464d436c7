// The llamacpp adapter and what backends say about themselves: llama.cpp's timings as usage,
// /health readiness and /props context length; Ollama's loaded (hot) models.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeLlamaCpp } from './support/fake_llamacpp.mjs';
import { startFakeOllama } from './support/fake_ollama.mjs';
import { baseConfig, chat, sseEvents, startPlexus, user } from './support/plexus.mjs';

let loading, ready, cold, hot, plexus;
before(async () => {
  loading = await startFakeLlamaCpp({ name: 'first' });
  ready = await startFakeLlamaCpp({ name: 'second' });
  loading.state.loading = true;
  cold = await startFakeOllama({ loaded: [], pulled: ['llama3.2:latest'] });
  hot = await startFakeOllama({ loaded: ['llama3.2:latest'], pulled: ['llama3.2:latest'] });
  plexus = await startPlexus(baseConfig([
    { name: 'first', provider: 'llamacpp', url: loading.url, models: ['qwen'], status_interval_s: 1 },
    { name: 'second', provider: 'llamacpp', url: `${ready.url}/v1`, models: ['qwen'], status_interval_s: 1 },
    { name: 'failing', provider: 'llamacpp', url: ready.url, models: ['error-mid'], status_interval_s: 1 },
    { name: 'cold', provider: 'ollama', url: cold.url, models: ['llama3.2'], status_interval_s: 1 },
    { name: 'hot', provider: 'ollama', url: hot.url, models: ['llama3.2', 'mistral'], status_interval_s: 1 },
    { name: 'also', provider: 'ollama', url: cold.url, models: ['mistral'], status_interval_s: 1 },
  ]));
  await new Promise((r) => setTimeout(r, 300)); // the first status answers
});
after(async () => {
  await plexus?.stop();
  for (const f of [loading, ready, cold, hot]) await f?.close();
});

test("a llama.cpp error line mid-stream ends the client's stream with that error's message", async () => {
  const res = await chat(plexus.url, { model: 'error-mid', messages: user('hi'), stream: true });
  assert.equal(res.status, 200);
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]');
  const error = JSON.parse(events.at(-2)).error;
  assert.match(error.message, /llama_decode failed: out of KV cache/);
  assert.equal(JSON.parse(events[0]).choices[0].delta.content, 'Hi');
});

test('llama.cpp timings become usage (whole and streamed); native sampling extras pass through', async () => {
  const res = await chat(plexus.url, { model: 'qwen', messages: user('hi'), repeat_penalty: 1.1, top_k: 40, min_p: 0.05, seed: 3 });
  const body = await res.json();
  assert.deepEqual(body.usage, { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13, cost: 0 });
  const sent = ready.state.requests.at(-1);
  assert.deepEqual([sent.repeat_penalty, sent.top_k, sent.min_p, sent.seed], [1.1, 40, 0.05, 3]);
  const events = await sseEvents(await chat(plexus.url, { model: 'qwen', messages: user('hi'), stream: true, stream_options: { include_usage: true } }));
  const last = JSON.parse(events.at(-2));
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13, cost: 0 });
  assert.match(plexus.stderr(), /node=second .*prompt_tokens=9 completion_tokens=4 .*tokens_per_second=50\.0/);
});

test('a llama.cpp server still loading (/health 503) is passed over; once ready it serves again', async () => {
  const a = await chat(plexus.url, { model: 'qwen', messages: user('hi') });
  assert.equal(a.headers.get('x-plexus-node'), 'second', 'first in the config, but loading');
  await a.text();
  assert.match(plexus.stderr(), /upstream 'first' is not ready: Loading model/);
  loading.state.loading = false;
  const deadline = Date.now() + 5000;
  let node;
  while (Date.now() < deadline) {
    const r = await chat(plexus.url, { model: 'qwen', messages: user('hi') });
    node = r.headers.get('x-plexus-node');
    await r.text();
    if (node === 'first') break;
    await new Promise((r2) => setTimeout(r2, 200));
  }
  assert.equal(node, 'first');
});

test("/props n_ctx is the upstream's context length: a conversation too long for it is a 400", async () => {
  const res = await chat(plexus.url, { model: 'qwen', messages: user('word '.repeat(100)) });
  assert.equal(res.status, 400);
  const err = (await res.json()).error;
  assert.equal(err.code, 'unsupported_feature');
  assert.match(err.message, /context length .*the largest is 64/);
});

test("Ollama's /api/ps: the upstream with the model in memory goes first", async () => {
  const res = await chat(plexus.url, { model: 'llama3.2', messages: user('hi') });
  assert.equal(res.headers.get('x-plexus-node'), 'hot', 'second in the config, but hot');
  await res.json();
});

test("Ollama's /api/tags: an upstream without the model pulled is not tried; none having it is a 503", async () => {
  const before = cold.state.requests.length + hot.state.requests.length;
  const res = await chat(plexus.url, { model: 'mistral', messages: user('hi') });
  assert.equal(res.status, 503);
  assert.equal((await res.json()).error.code, 'model_unavailable');
  assert.equal(cold.state.requests.length + hot.state.requests.length, before, 'no backend was asked');
});
