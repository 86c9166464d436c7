// The anthropic adapter through the running router, against a fake Messages API.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeAnthropic } from './support/fake_anthropic.mjs';
import { baseConfig, chat, demoKey, parseSse, sseEvents, startPlexus, user } from './support/plexus.mjs';

let anthropic, plexus;
before(async () => {
  anthropic = await startFakeAnthropic();
  plexus = await startPlexus(baseConfig([
    { name: 'claude', provider: 'anthropic', url: anthropic.url, api_key: 'sk-ant-test',
      models: [{ id: 'claude', upstream_model: 'claude-sonnet-4' }, 'claude-tools', 'overloaded', 'midstream-error', 'limited', 'truncated'],
      options: { default_max_tokens: 1000 } },
  ]));
});
after(async () => {
  await plexus?.stop();
  await anthropic?.close();
});

const chunks = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
const text = (events) => chunks(events).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');

test('the request becomes a Messages API call: system hoisted, max_tokens default, tools, tool results', async () => {
  const res = await chat(plexus.url, {
    model: 'claude',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: 'Answer in English.' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_9', content: '18°C' },
    ],
    temperature: 1.5, top_p: 0.9, stop: ['END'],
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: { type: 'object' } } }],
    tool_choice: 'required',
  });
  assert.equal(res.status, 200);
  await res.json();
  const { headers, body } = anthropic.state.requests.at(-1);
  assert.equal(headers['x-api-key'], 'sk-ant-test');
  assert.equal(headers['anthropic-version'], '2023-06-01');
  assert.equal(body.model, 'claude-sonnet-4');
  assert.equal(body.system, 'Be brief.\n\nAnswer in English.');
  assert.equal(body.max_tokens, 1000);
  assert.equal(body.temperature, 1, 'clamped to Anthropic\'s 0..1');
  assert.deepEqual(body.stop_sequences, ['END']);
  assert.deepEqual(body.tools, [{ name: 'get_weather', description: 'weather', input_schema: { type: 'object' } }]);
  assert.deepEqual(body.tool_choice, { type: 'any' });
  assert.deepEqual(body.messages[1], { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Paris' } }] });
  assert.deepEqual(body.messages[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_9', content: '18°C' }] });
});

test('a whole answer: text, usage, stop_reason mapped', async () => {
  const body = await (await chat(plexus.url, { model: 'claude', messages: user('hi'), max_tokens: 50 })).json();
  assert.equal(anthropic.state.requests.at(-1).body.max_tokens, 50);
  assert.equal(body.choices[0].message.content, 'Hello from claude');
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.deepEqual(body.usage, { prompt_tokens: 25, completion_tokens: 3, total_tokens: 28, cost: 0 });
  const limited = await (await chat(plexus.url, { model: 'limited', messages: user('hi') })).json();
  assert.equal(limited.choices[0].finish_reason, 'length');
});

test('the event stream becomes OpenAI chunks; pings are skipped; usage on request', async () => {
  const events = await sseEvents(await chat(plexus.url, { model: 'claude', messages: user('hi'), stream: true, stream_options: { include_usage: true } }));
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(text(events), 'Hello from claude');
  const cs = chunks(events);
  assert.equal(cs[0].choices[0].delta.role, 'assistant');
  assert.equal(cs.at(-2).choices[0].finish_reason, 'stop');
  assert.deepEqual(cs.at(-1).usage, { prompt_tokens: 25, completion_tokens: 3, total_tokens: 28, cost: 0 });
});

// Anthropic says which stop sequence ended the answer; it goes on as vLLM says it ("stop_reason"
// beside finish_reason "stop"), and a Messages API client gets it back as its stop_sequence.
test('the stop sequence that ended the answer is kept, whole, streamed and through /v1/messages', async () => {
  const ask = { model: 'claude', messages: user('hi'), max_tokens: 50, stop: ['nowhere', ' from'] };
  const whole = await (await chat(plexus.url, ask)).json();
  assert.deepEqual(anthropic.state.requests.at(-1).body.stop_sequences, ['nowhere', ' from']);
  assert.equal(whole.choices[0].message.content, 'Hello');
  assert.equal(whole.choices[0].finish_reason, 'stop');
  assert.equal(whole.choices[0].stop_reason, ' from');
  const events = await sseEvents(await chat(plexus.url, { ...ask, stream: true }));
  assert.equal(text(events), 'Hello');
  const finish = chunks(events).find((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.choices[0].stop_reason, ' from');
  const natural = await (await chat(plexus.url, { ...ask, stop: ['nowhere'] })).json();
  assert.equal(natural.choices[0].stop_reason, undefined, 'no stop sequence matched: no stop_reason');

  const res = await fetch(`${plexus.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': demoKey },
    body: JSON.stringify({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], stop_sequences: [' from'] }),
  });
  const msg = await res.json();
  assert.equal(res.status, 200, JSON.stringify(msg));
  assert.equal(msg.stop_reason, 'stop_sequence');
  assert.equal(msg.stop_sequence, ' from');
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello' }]);
});

test('tool_use becomes tool_calls, streamed in parts and whole, through the official SDK', async () => {
  const client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const whole = await client.chat.completions.create({ model: 'claude-tools', messages: [{ role: 'user', content: 'weather?' }], tools });
  assert.equal(whole.choices[0].finish_reason, 'tool_calls');
  assert.equal(whole.choices[0].message.content, 'Let me check.');
  assert.equal(whole.choices[0].message.tool_calls[0].id, 'toolu_01');
  assert.deepEqual(JSON.parse(whole.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });

  const stream = await client.chat.completions.create({ model: 'claude-tools', messages: [{ role: 'user', content: 'weather?' }], tools, stream: true });
  let args = '', name, id, finish, content = '';
  for await (const c of stream)
    for (const choice of c.choices) {
      content += choice.delta?.content ?? '';
      for (const call of choice.delta?.tool_calls ?? []) {
        assert.equal(call.index, 0);
        id = call.id ?? id;
        name = call.function?.name ?? name;
        args += call.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
  assert.equal(content, 'Let me check.');
  assert.equal(id, 'toolu_01');
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  assert.equal(finish, 'tool_calls');
});

test('errors: 529 overloaded is a 502 after failover has nowhere to go; an error event ends the stream', async () => {
  const res = await chat(plexus.url, { model: 'overloaded', messages: user('hi') });
  assert.equal(res.status, 502);
  assert.match((await res.json()).error.message, /Overloaded/);
  const events = parseSse(await (await chat(plexus.url, { model: 'midstream-error', messages: user('hi'), stream: true })).text());
  assert.equal(events.at(-1), '[DONE]');
  assert.match(JSON.parse(events.at(-2)).error.message, /Overloaded/);
  assert.equal(text(events.slice(0, -2)), 'Hello from claude');
  const cut = parseSse(await (await chat(plexus.url, { model: 'truncated', messages: user('hi'), stream: true })).text());
  assert.equal(cut.at(-1), '[DONE]');
  assert.equal(JSON.parse(cut.at(-2)).error.code, 'upstream_truncated', 'a stream without message_stop is not a silent cut');
  assert.equal(text(cut.slice(0, -2)), 'Hello from claude');
});

test('a conversation Anthropic cannot take is a 400 naming why, before any call', async () => {
  const before = anthropic.state.requests.length;
  const res = await chat(plexus.url, { model: 'claude', messages: [{ role: 'system', content: 'only a system prompt' }] });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, 'unsupported_by_backend');
  assert.equal(anthropic.state.requests.length, before);
});

test("an assistant tool call whose arguments are not JSON is a 400 naming them, never a silent {}", async () => {
  const before = anthropic.state.requests.length;
  const res = await chat(plexus.url, {
    model: 'claude',
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": Par' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
    ],
  });
  assert.equal(res.status, 400);
  const error = (await res.json()).error;
  assert.equal(error.param, 'messages[1].tool_calls[0].function.arguments');
  assert.match(error.message, /not valid JSON/);
  assert.equal(anthropic.state.requests.length, before, 'nothing reached the backend');
});
