// log.format "json": every line the router logs is one JSON object ({"time", "level", "message"}),
// and access lines carry their fields as fields ({"event": "access", "id", "model", ...}) for log
// shippers. Never prompt or completion text, in either format.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, sseEvents, startPlexus, user } from './support/plexus.mjs';

const secret = 'a "quoted" prompt nobody may log';
let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  plexus = await startPlexus(baseConfig([{ name: 'up', provider: 'openai', url: fake.url, models: ['gpt-x', 'fail-500'] }],
    { log: { level: 'info', access_log: true, format: 'json' } }));
  await (await chat(plexus.url, { model: 'gpt-x', messages: user(secret) })).json();
  await sseEvents(await chat(plexus.url, { model: 'gpt-x', messages: user(secret), stream: true }));
  await (await chat(plexus.url, { model: 'fail-500', messages: user(secret) })).text();
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

test('every line is a JSON object; access lines carry their fields; no prompt text', async () => {
  let lines = [];
  for (let i = 0; i < 50 && lines.filter((l) => l.event === 'access').length < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    lines = plexus.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
  assert.ok(lines.every((l) => typeof l.time === 'string' && typeof l.level === 'string'), 'time and level on every line');
  const access = lines.filter((l) => l.event === 'access');
  assert.equal(access.length, 3);
  assert.deepEqual(access.map((a) => a.status).sort(), [200, 200, 502]);
  for (const a of access) {
    assert.equal(a.model === 'gpt-x' || a.model === 'fail-500', true);
    assert.equal(typeof a.id, 'string');
    assert.equal(typeof a.total_ms, 'number');
    assert.equal(typeof a.prompt_tokens, 'number');
  }
  assert.equal(access.find((a) => a.status === 502).error, 'upstream_error');
  assert.ok(!plexus.stderr().includes('nobody may log'), 'no prompt text in the log');
});
