// The official openai npm package, used the way an application uses it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';

let plexus, client;
before(async () => {
  plexus = await startPlexus(
    baseConfig([{ name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 5, tokens_per_second: 500 } }]),
  );
  client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
});
after(async () => plexus?.stop());

test('chat.completions.create, whole', async () => {
  const completion = await client.chat.completions.create({
    model: 'demo',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }],
    max_tokens: 12,
    seed: 7,
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.role, 'assistant');
  assert.ok(completion.choices[0].message.content.length > 0);
  assert.equal(completion.choices[0].finish_reason, 'length');
  assert.equal(completion.usage.completion_tokens, 12);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + 12);
});

test('chat.completions.create, streamed, with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'demo',
    messages: [{ role: 'user', content: 'Say hello' }],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 10,
    seed: 7,
  });
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 10);
  const whole = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 10, seed: 7 });
  assert.equal(text, whole.choices[0].message.content, 'streamed and whole answers agree');
});

test('models.list and typed errors', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.deepEqual(models, ['demo']);
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  const bad = new OpenAI({ apiKey: 'sk-not-a-key', baseURL: `${plexus.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
});
