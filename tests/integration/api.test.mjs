// The OpenAI surface through the real binary: whole and streamed answers, usage, pass-through,
// model listing per group, health endpoints, request ids.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, sseEvents, startPlexus, user } from './support/plexus.mjs';

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI({ name: 'alpha' });
  plexus = await startPlexus(
    baseConfig(
      [
        { name: 'alpha', provider: 'openai', url: fake.url, models: ['gpt-x', { id: 'renamed', upstream_model: 'backend-name' }], group: 'public' },
        { name: 'secret', provider: 'openai', url: fake.url, models: ['team-only'], group: 'team' },
        { name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 5, tokens_per_second: 1000 } },
      ],
      { keys: [{ id: 'demo', key: demoKey, group: 'public' }, { id: 'team', key: 'sk-team-key-123', group: 'team' }] },
    ),
  );
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

test('whole completion is relayed verbatim with request id and node headers', async () => {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), temperature: 0.5, my_vendor_field: { a: 1 } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);
  assert.equal(res.headers.get('x-plexus-node'), 'alpha');
  const body = await res.json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'Hello from alpha');
  assert.deepEqual(body.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10, cost: 0 });
  assert.equal(body.x_backend_extra, 'kept');
  const seen = fake.state.requests.at(-1).body;
  assert.deepEqual(seen.my_vendor_field, { a: 1 }, 'unknown fields pass through');
  assert.equal(seen.temperature, 0.5);
});

test('a client-supplied X-Request-Id is kept and forwarded upstream', async () => {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') }, { headers: { 'x-request-id': 'trace-123' } });
  assert.equal(res.headers.get('x-request-id'), 'trace-123');
  await res.text();
  assert.equal(fake.state.requests.at(-1).headers['x-request-id'], 'trace-123');
});

test('the model is renamed to the upstream name', async () => {
  const res = await chat(plexus.url, { model: 'renamed', messages: user('hi') });
  assert.equal(res.status, 200);
  await res.json();
  assert.equal(fake.state.requests.at(-1).body.model, 'backend-name');
});

test('streamed completion: SSE headers, chunks in order, [DONE], no usage unless asked', async () => {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(res.headers.get('x-plexus-node'), 'alpha');
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hello from alpha');
  assert.ok(chunks.every((c) => c.choices.length > 0), 'no usage-only chunk when the client did not ask');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  // The router asked the upstream for usage anyway, to meter the stream.
  assert.equal(fake.state.requests.at(-1).body.stream_options.include_usage, true);
});

test('stream_options.include_usage gives a final chunk with empty choices and usage', async () => {
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true, stream_options: { include_usage: true } });
  const events = await sseEvents(res);
  const last = JSON.parse(events.at(-2));
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10, cost: 0 });
});

test('models are listed per group; other groups stay invisible and unreachable', async () => {
  const pub = await (await fetch(`${plexus.url}/v1/models`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  assert.equal(pub.object, 'list');
  assert.deepEqual(pub.data.map((m) => m.id).sort(), ['demo', 'gpt-x', 'renamed']);
  for (const m of pub.data) {
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(typeof m.owned_by, 'string');
  }
  const team = await (await fetch(`${plexus.url}/v1/models`, { headers: { authorization: 'Bearer sk-team-key-123' } })).json();
  assert.deepEqual(team.data.map((m) => m.id), ['team-only']);

  const denied = await chat(plexus.url, { model: 'team-only', messages: user('hi') });
  assert.equal(denied.status, 404);
  assert.equal((await denied.json()).error.code, 'model_not_found');
  const one = await fetch(`${plexus.url}/v1/models/demo`, { headers: { authorization: `Bearer ${demoKey}` } });
  assert.equal((await one.json()).id, 'demo');
  const hidden = await fetch(`${plexus.url}/v1/models/team-only`, { headers: { authorization: `Bearer ${demoKey}` } });
  assert.equal(hidden.status, 404);
});

test('health and readiness', async () => {
  const h = await fetch(`${plexus.url}/healthz`);
  assert.equal(h.status, 200);
  assert.ok(h.headers.get('x-request-id'));
  assert.deepEqual(await h.json(), { status: 'ok' });
  const r = await fetch(`${plexus.url}/readyz`);
  assert.deepEqual(await r.json(), { status: 'ready' });
});

test('the access log names request, key, model, node and tokens but never the prompt', async () => {
  const secret = 'my-very-private-prompt-text';
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user(secret) });
  const id = res.headers.get('x-request-id');
  await res.json();
  await new Promise((r) => setTimeout(r, 50));
  const line = plexus.stderr().split('\n').find((l) => l.includes(`id=${id}`));
  assert.ok(line, 'an access line for the request');
  assert.match(line, /key=demo model=gpt-x node=alpha status=200 stream=false price_in=0 price_out=0 prompt_tokens=7 completion_tokens=3/);
  assert.ok(!plexus.stderr().includes(secret));
  assert.ok(!plexus.stderr().includes('Hello from alpha'));
});
