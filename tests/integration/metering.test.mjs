// Metering through the real router: the price fixed at routing, usage.cost on whole answers and
// on the final usage chunk, a key's budget spent as tokens flow (a stream cut at the last token it
// pays for, with an error event and [DONE]; then 402), and streams billed for what was delivered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, sseEvents, startPlexus, user } from './support/plexus.mjs';

const richKey = 'sk-metering-rich-key';
const poorKey = 'sk-metering-poor-key';
let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI({ name: 'priced' });
  plexus = await startPlexus(baseConfig(
    // Input free and each output token 1.0 (1000 per 1K), so costs are whole numbers of tokens.
    [{ name: 'priced', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 2, output_per_1k: 1000 } }],
    { keys: [
      { id: 'demo', key: demoKey },
      { id: 'rich', key: richKey, budget: 1000000 },
      { id: 'poor', key: poorKey, budget: 5.5 },
    ] },
  ));
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

const accessLines = () => plexus.stderr().split('\n').filter((l) => l.includes(' access '));
const field = (line, name) => line.match(new RegExp(` ${name}=(\\S+)`))?.[1];

test('whole answers and the final usage chunk carry usage.cost at the routed price', async () => {
  const whole = await (await chat(plexus.url, { model: 'gpt-x', messages: user('hi') })).json();
  const u = whole.usage;
  assert.equal(u.cost, (u.prompt_tokens * 2 + u.completion_tokens * 1000) / 1000);
  const events = await sseEvents(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true, stream_options: { include_usage: true } }));
  const last = JSON.parse(events.at(-2));
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.cost, (last.usage.prompt_tokens * 2 + last.usage.completion_tokens * 1000) / 1000);
});

test('a budget cuts a stream at the last token it pays for, then refuses the key with 402', async () => {
  // 20 tokens of 1.0 each offered; the prompt costs about 0.002 a token (an estimate, 4 chars
  // each): 5.5 pays for the prompt and 5 tokens, not 6.
  const res = await chat(plexus.url, { model: 'slow', messages: user('count please'), stream: true }, { key: poorKey });
  assert.equal(res.status, 200);
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]');
  const error = JSON.parse(events.at(-2)).error;
  assert.equal(error.code, 'budget_exceeded');
  const text = events.slice(0, -2).map((e) => JSON.parse(e).choices?.[0]?.delta?.content ?? '').join('');
  assert.equal(text, '0 1 2 3 4 ');
  // What is left (about 0.49) pays for no token: the next stream is refused before its first byte.
  const next = await chat(plexus.url, { model: 'slow', messages: user('more'), stream: true }, { key: poorKey });
  assert.equal(next.status, 402);
  assert.equal((await next.json()).error.code, 'budget_exceeded');
  const line = accessLines().find((l) => l.includes('key=poor') && l.includes('model=slow'));
  assert.equal(field(line, 'completion_tokens'), '5');
  assert.match(line, /usage=estimated/);
  assert.ok(Math.abs(Number(field(line, 'cost')) - 5.006) < 0.001, line);
});

test('a stream the client leaves is billed for the tokens it received', async () => {
  const controller = new AbortController();
  const res = await chat(plexus.url, { model: 'slow', messages: user('leave early'), stream: true }, { key: richKey, signal: controller.signal });
  const reader = res.body.getReader();
  let text = '';
  while (!/3 /.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  const deadline = Date.now() + 5000;
  let line;
  while (!(line = accessLines().find((l) => l.includes('key=rich') && l.includes('status=499'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(line, 'the access line of the aborted stream');
  const delivered = Number(field(line, 'completion_tokens'));
  assert.ok(delivered >= 4 && delivered < 20, line);
  assert.match(line, /usage=estimated/);
  assert.ok(Math.abs(Number(field(line, 'cost')) - (delivered + Number(field(line, 'prompt_tokens')) * 0.002)) < 0.001, line);
});
