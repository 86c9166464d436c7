// Every failure a client can cause, and every upstream failure before the first byte: an
// OpenAI-shaped error with the right status, and the server keeps serving.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, freePort, startPlexus, user } from './support/plexus.mjs';

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  const refused = await freePort();
  plexus = await startPlexus(
    baseConfig(
      [
        { name: 'fake', provider: 'openai', url: fake.url, models: ['gpt-x', 'fail-500', 'bad-request', 'hang', 'slow'],
          timeouts: { first_byte_ms: 300 } },
        { name: 'nobody-home', provider: 'openai', url: `http://127.0.0.1:${refused}/v1`, models: ['refused'] },
        { name: 'nobody-home-ollama', provider: 'ollama', url: `http://127.0.0.1:${refused}`, models: ['refused-ollama'] },
      ],
      { limits: { max_body_bytes: 4096, max_inflight: 2 } },
    ),
  );
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

async function expectError(res, status, { code, param, type } = {}) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type'), /application\/json/);
  assert.ok(res.headers.get('x-request-id'));
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  if (code !== undefined) assert.equal(body.error.code, code);
  if (param !== undefined) assert.equal(body.error.param, param);
  if (type !== undefined) assert.equal(body.error.type, type);
  return body.error;
}

test('400: malformed JSON', async () => {
  await expectError(await chat(plexus.url, '{"model": "gpt-x", '), 400, { code: 'invalid_json', type: 'invalid_request_error' });
});

test('400: missing and ill-typed fields are named', async () => {
  await expectError(await chat(plexus.url, { messages: user('hi') }), 400, { param: 'model' });
  await expectError(await chat(plexus.url, { model: 'gpt-x' }), 400, { param: 'messages' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: 'hi' }), 400, { param: 'messages' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: [{ role: 'user' }] }), 400, { param: 'messages[0].content' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), temperature: 'hot' }), 400, { param: 'temperature' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), max_tokens: 0 }), 400, { param: 'max_tokens' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), n: 2 }), 400, { param: 'n' });
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream_options: { include_usage: true } }), 400, { param: 'stream_options' });
  await expectError(await chat(plexus.url, [1, 2]), 400);
});

test('401: missing or wrong key', async () => {
  await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi') }, { key: null }), 401, { code: 'missing_api_key' });
  const err = await expectError(await chat(plexus.url, { model: 'gpt-x', messages: user('hi') }, { key: 'sk-wrong-key' }), 401, { code: 'invalid_api_key' });
  assert.ok(!err.message.includes('sk-wrong-key'), 'the presented key is not echoed');
  await expectError(await fetch(`${plexus.url}/v1/models`, { headers: { authorization: 'Basic abc' } }), 401);
});

test('404: unknown model (named) and unknown path', async () => {
  const err = await expectError(await chat(plexus.url, { model: 'no-such-model', messages: user('hi') }), 404, { code: 'model_not_found', param: 'model' });
  assert.match(err.message, /no-such-model/);
  await expectError(await fetch(`${plexus.url}/v1/images/generations`, { method: 'POST' }), 404, { code: 'unknown_url' });
});

test('405: wrong method, with Allow', async () => {
  const res = await fetch(`${plexus.url}/v1/chat/completions`);
  assert.equal(res.headers.get('allow'), 'POST');
  await expectError(res, 405, { code: 'method_not_allowed' });
  await expectError(await fetch(`${plexus.url}/v1/models`, { method: 'DELETE', headers: { authorization: `Bearer ${demoKey}` } }), 405);
});

test('413: body over the configured limit', async () => {
  const big = { model: 'gpt-x', messages: user('x'.repeat(6000)) };
  await expectError(await chat(plexus.url, big), 413, { code: 'request_too_large' });
});

test('400 from the upstream (the client\'s fault) comes back as the upstream said it, without failover', async () => {
  const before = fake.state.requests.length;
  await expectError(await chat(plexus.url, { model: 'bad-request', messages: user('hi') }), 400, { code: 'context_length_exceeded', param: 'messages' });
  assert.equal(fake.state.requests.length, before + 1);
});

test('502: upstream 5xx', async () => {
  await expectError(await chat(plexus.url, { model: 'fail-500', messages: user('hi') }), 502, { type: 'upstream_error' });
  await expectError(await chat(plexus.url, { model: 'fail-500', messages: user('hi'), stream: true }), 502);
});

test('504: upstream does not answer within first_byte_ms', async () => {
  await expectError(await chat(plexus.url, { model: 'hang', messages: user('hi') }), 504, { code: 'upstream_timeout' });
});

test('429: more requests in flight than max_inflight', async () => {
  const slow = [1, 2].map(() => chat(plexus.url, { model: 'slow', messages: user('hi'), stream: true }));
  const responses = await Promise.all(slow);
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(res.headers.get('retry-after'), '1');
  await expectError(res, 429, { code: 'router_at_capacity' });
  for (const r of responses) await r.text();
  const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(ok.status, 200, 'capacity comes back once streams finish');
  await ok.text();
});

test('garbage on the socket gets an error and the server keeps serving', async () => {
  for (const junk of ['GARBAGE\r\n\r\n', 'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n', '\x00\x01\x02\xff\r\n\r\n']) {
    await new Promise((resolve) => {
      const s = net.connect(plexus.port, '127.0.0.1', () => s.write(junk));
      s.on('data', () => s.destroy());
      s.on('error', () => resolve());
      s.on('close', resolve);
      setTimeout(() => s.destroy(), 500);
    });
  }
  const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(ok.status, 200);
  await ok.text();
});

test('a backend that refuses the connection is upstream_unreachable (502), whole and streamed, for every adapter', async () => {
  for (const model of ['refused', 'refused-ollama'])
    for (const stream of [false, true]) {
      const res = await chat(plexus.url, { model, messages: user('hi'), stream });
      await expectError(res, 502, { code: 'upstream_unreachable' });
    }
});
