// The ollama adapter through the running router, against a fake that speaks Ollama's protocol.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startFakeOllama } from './support/fake_ollama.mjs';
import { baseConfig, chat, demoKey, parseSse, sseEvents, startPlexus, user } from './support/plexus.mjs';

let ollama, plexus;
before(async () => {
  ollama = await startFakeOllama();
  plexus = await startPlexus(baseConfig([
    { name: 'ollama', provider: 'ollama', url: ollama.url, status_interval_s: 0, // translation only: no /api/tags filtering
      models: [{ id: 'llama', upstream_model: 'llama3.2' }, 'long', 'tooluser', 'missing', 'cut', 'oom'] },
  ]));
});
after(async () => {
  await plexus?.stop();
  await ollama?.close();
});

const chunks = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
const text = (events) => chunks(events).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');

test('the request is mapped to /api/chat: options, num_predict, stop, roles, images, tool calls', async () => {
  const png = 'iVBORw0KGgo=';
  const res = await chat(plexus.url, {
    model: 'llama',
    messages: [
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'What is ' }, { type: 'text', text: 'this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'look', arguments: '{"zoom":2}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'a cat' },
    ],
    temperature: 0.2, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, seed: 7, max_tokens: 64, stop: 'END',
    tools: [{ type: 'function', function: { name: 'look', parameters: { type: 'object' } } }],
    response_format: { type: 'json_object' },
  });
  assert.equal(res.status, 200);
  await res.json();
  const sent = ollama.state.requests.at(-1);
  assert.equal(sent.model, 'llama3.2');
  assert.equal(sent.stream, false);
  assert.deepEqual(sent.options, { temperature: 0.2, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, seed: 7, num_predict: 64, stop: ['END'] });
  assert.equal(sent.messages[0].role, 'system');
  assert.equal(sent.messages[1].content, 'What is this?');
  assert.deepEqual(sent.messages[1].images, [png]);
  assert.deepEqual(sent.messages[2].tool_calls, [{ function: { name: 'look', arguments: { zoom: 2 } } }]);
  assert.equal(sent.messages[3].role, 'tool');
  assert.equal(sent.tools[0].function.name, 'look');
  assert.equal(sent.format, 'json');
});

test('NDJSON stream becomes OpenAI SSE chunks with usage and finish_reason', async () => {
  const events = await sseEvents(await chat(plexus.url, { model: 'llama', messages: user('hi'), stream: true, stream_options: { include_usage: true } }));
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(text(events), 'Hello from ollama');
  const cs = chunks(events);
  assert.equal(cs[0].choices[0].delta.role, 'assistant');
  assert.ok(cs.every((c) => c.object === 'chat.completion.chunk' && c.id === cs[0].id));
  assert.equal(cs.at(-2).choices[0].finish_reason, 'stop');
  assert.deepEqual(cs.at(-1).usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14, cost: 0 });
  assert.equal(ollama.state.requests.at(-1).stream, true);
});

test('a whole answer is one chat.completion; done_reason length is finish_reason length', async () => {
  const body = await (await chat(plexus.url, { model: 'long', messages: user('hi') })).json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'Hello from ollama');
  assert.equal(body.choices[0].finish_reason, 'length');
  assert.deepEqual(body.usage, { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14, cost: 0 });
});

test('tool calls come back as OpenAI tool_calls, streamed and whole, through the official SDK', async () => {
  const client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const whole = await client.chat.completions.create({ model: 'tooluser', messages: [{ role: 'user', content: 'weather?' }], tools });
  assert.equal(whole.choices[0].finish_reason, 'tool_calls');
  assert.equal(whole.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(whole.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
  const stream = await client.chat.completions.create({ model: 'tooluser', messages: [{ role: 'user', content: 'weather?' }], tools, stream: true });
  let call, finish;
  for await (const c of stream) {
    for (const choice of c.choices) {
      if (choice.delta?.tool_calls) call = choice.delta.tool_calls[0];
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  // Ollama names no calls: the ids the router gives them are unique, so a client that keys
  // tool results by id never mixes two answers up.
  const again = await client.chat.completions.create({ model: 'tooluser', messages: [{ role: 'user', content: 'weather?' }], tools });
  const ids = [whole.choices[0].message.tool_calls[0].id, call.id, again.choices[0].message.tool_calls[0].id];
  assert.equal(new Set(ids).size, 3, ids.join(' '));
  assert.ok(ids.every((id) => /^call_[0-9a-f]{24}$/.test(id)), ids.join(' '));
});

test('answers the router makes have unique ids, even when a client sends the same X-Request-Id twice', async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const res = await chat(plexus.url, { model: 'llama', messages: user('hi') }, { headers: { 'x-request-id': 'reused-id' } });
    assert.equal(res.headers.get('x-request-id'), 'reused-id');
    ids.push((await res.json()).id);
  }
  assert.notEqual(ids[0], ids[1]);
  assert.ok(ids.every((id) => id.startsWith('chatcmpl-reused-id-')), ids.join(' '));
});

test("an assistant tool call whose arguments are not JSON is a 400 naming them, never a silent {}", async () => {
  const before = ollama.state.requests.length;
  const res = await chat(plexus.url, {
    model: 'llama',
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: 'city=Paris' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
    ],
  });
  assert.equal(res.status, 400);
  const error = (await res.json()).error;
  assert.equal(error.param, 'messages[1].tool_calls[0].function.arguments');
  assert.equal(ollama.state.requests.length, before, 'nothing reached the backend');
});

test("Ollama's errors: a missing model keeps its 404 and message", async () => {
  const res = await chat(plexus.url, { model: 'missing', messages: user('hi') });
  assert.equal(res.status, 404);
  const body = await res.json();
  assert.match(body.error.message, /model "missing" not found, try pulling it first/);
  assert.equal(body.error.type, 'invalid_request_error');
});

test('a stream cut mid-line, or an error line mid-stream, ends with an error event and [DONE]', async () => {
  for (const [model, code] of [['cut', /upstream_(protocol_error|truncated)/], ['oom', /upstream_error/]]) {
    const events = parseSse(await (await chat(plexus.url, { model, messages: user('hi'), stream: true })).text());
    assert.equal(events.at(-1), '[DONE]', model);
    const err = JSON.parse(events.at(-2)).error;
    assert.match(err.code, code, model);
    assert.equal(text(events.slice(0, -2)), 'Hel', `${model}: what was delivered stays`);
  }
  const oom = parseSse(await (await chat(plexus.url, { model: 'oom', messages: user('hi'), stream: true })).text());
  assert.match(JSON.parse(oom.at(-2)).error.message, /out of memory/);
});

test('what Ollama cannot take is a clear 400 naming the field, before any call', async () => {
  const before = ollama.state.requests.length;
  const res = await chat(plexus.url, { model: 'llama', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, 'unsupported_by_backend');
  assert.equal(body.error.param, 'messages[0].content[0].image_url.url');
  assert.equal(ollama.state.requests.length, before);
});
