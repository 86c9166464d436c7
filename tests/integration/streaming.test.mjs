// Streams under stress and failure: client aborts, 200 concurrent streams, an upstream that dies
// mid-stream, failover before the first byte.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, parseSse, sseEvents, startPlexus, user } from './support/plexus.mjs';

async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  return port;
}

let primary, backup, plexus;
before(async () => {
  primary = await startFakeOpenAI({ name: 'primary' });
  backup = await startFakeOpenAI({ name: 'backup' });
  const dead = await closedPort();
  plexus = await startPlexus(
    baseConfig([
      { name: 'down', provider: 'openai', url: `http://127.0.0.1:${dead}/v1`, models: ['failover'], timeouts: { connect_ms: 500 } },
      { name: 'broken', provider: 'openai', url: primary.url, models: [{ id: 'failover-500', upstream_model: 'fail-500' }] },
      { name: 'backup', provider: 'openai', url: backup.url, models: ['failover', 'failover-500'] },
      { name: 'primary', provider: 'openai', url: primary.url, models: ['gpt-x', 'slow', 'endless', 'die-mid'] },
    ], { limits: { max_inflight: 1000 } }),
  );
});
after(async () => {
  await plexus?.stop();
  await primary?.close();
  await backup?.close();
});

test('client abort mid-stream cancels the upstream transfer; the next 20 requests succeed', async () => {
  const closedBefore = primary.state.closedEarly;
  const controller = new AbortController();
  const res = await chat(plexus.url, { model: 'endless', messages: user('hi'), stream: true }, { signal: controller.signal });
  const reader = res.body.getReader();
  let got = '';
  while (!got.includes('2 ')) got += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  const deadline = Date.now() + 5000;
  while (primary.state.closedEarly === closedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(primary.state.closedEarly, closedBefore + 1, 'the upstream saw its stream closed');

  for (let i = 0; i < 20; i++) {
    const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: i % 2 === 0 });
    assert.equal(ok.status, 200);
    await ok.text();
  }
});

test('200 concurrent streams all complete with every byte in order', async () => {
  const N = 200;
  const results = await Promise.all(
    Array.from({ length: N }, async () => {
      const res = await chat(plexus.url, { model: 'slow', messages: user('hi'), stream: true });
      assert.equal(res.status, 200);
      return sseEvents(res);
    }),
  );
  const expected = Array.from({ length: 20 }, (_, i) => `${i} `).join('');
  for (const events of results) {
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, expected);
  }
});

test('an upstream that dies mid-stream ends the stream with an error event and [DONE]', async () => {
  const res = await chat(plexus.url, { model: 'die-mid', messages: user('hi'), stream: true });
  assert.equal(res.status, 200);
  const events = parseSse(await res.text());
  assert.equal(events.at(-1), '[DONE]');
  const error = JSON.parse(events.at(-2));
  assert.ok(error.error, 'an error event before [DONE]');
  assert.equal(typeof error.error.message, 'string');
  assert.equal(error.error.code, 'upstream_protocol_error');
  const content = events.slice(0, -2).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, 'partial', 'what was delivered before the failure is kept');
});

test('an upstream that is down fails over to the next one serving the model', async () => {
  for (const stream of [false, true]) {
    const res = await chat(plexus.url, { model: 'failover', messages: user('hi'), stream });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-plexus-node'), 'backup');
    const text = await res.text();
    assert.match(text, /backup/);
  }
});

test('an upstream answering 5xx fails over too', async () => {
  const res = await chat(plexus.url, { model: 'failover-500', messages: user('hi') });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'backup');
  await res.json();
});
