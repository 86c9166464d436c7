// POST /v1/messages (Anthropic's Messages API, inbound) through the real router, translated at the
// edge into one chat-completions request to the backend (the fake sees /v1/chat/completions) and
// back: the official @anthropic-ai/sdk (messages.create, messages.stream with its text events and
// finalMessage, tool_use then tool_result, typed errors), and raw HTTP: the request's translation,
// stop_reason mapping, Anthropic-shaped errors with the HTTP status, x-api-key and Bearer keys, a
// stream that fails half-way (an `error` event, no message_stop), the receipt's body hash, and a
// backend stream delivered in random 1-7 byte pieces translating to the same events as one whole.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { startFakeVllm } from './support/fake_vllm.mjs';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';
import { bodySha256, verifiedReceipt } from './support/receipts.mjs';
import { startTrickleProxy } from './support/trickle_proxy.mjs';

let fake, vllm, proxy, plexus, client;
before(async () => {
  fake = await startFakeOpenAI({ name: 'lab' });
  vllm = await startFakeVllm();
  proxy = await startTrickleProxy(fake.url);
  plexus = await startPlexus(baseConfig([
    { name: 'lab', provider: 'openai', url: fake.url, models: ['gpt-x', 'tools', 'die-mid', 'fail-500'],
      price: { input_per_1k: 3, output_per_1k: 5 } },
    // The same fake behind a proxy that hands its bytes on in random 1-7 byte pieces.
    { name: 'lab-split', provider: 'openai', url: proxy.url,
      models: [{ id: 'split-gpt-x', upstream_model: 'gpt-x' }, { id: 'split-tools', upstream_model: 'tools' }] },
    // vLLM says which stop string ended an answer.
    { name: 'vllm', provider: 'openai', url: `${vllm.url}/v1`, models: [{ id: 'llama', upstream_model: 'meta-llama/Llama-3.1-8B-Instruct' }] },
    // The demo node honours max_tokens (finish_reason "length").
    { name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 1, tokens_per_second: 2000 } },
  ]));
  // The SDK appends /v1/messages to its base URL itself.
  client = new Anthropic({ baseURL: plexus.url, apiKey: demoKey, maxRetries: 0 });
});
after(async () => {
  await plexus?.stop();
  await proxy?.close();
  await fake?.close();
  await vllm?.close();
});

const weatherTool = {
  name: 'get_weather', description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const hello = [{ role: 'user', content: 'Say hello' }];

const post = (body, headers = { 'x-api-key': demoKey }) => fetch(`${plexus.url}/v1/messages`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

// A Messages stream's events: [{event, data}] with data parsed. Every event has both lines.
async function streamed(body, headers) {
  const res = await post({ ...body, stream: true }, headers);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  assert.ok(text.endsWith('\n\n'), 'the stream ends after a whole event');
  return text.split('\n\n').filter(Boolean).map((block) => {
    const m = block.match(/^event: (.+)\ndata: (.+)$/);
    assert.ok(m, `an "event:" line then a "data:" line: ${JSON.stringify(block)}`);
    const data = JSON.parse(m[2]);
    assert.equal(data.type, m[1], 'the event line names the data\'s type');
    return { event: m[1], data };
  });
}

const lastChatRequest = () => fake.state.requests.at(-1).body;

test('SDK: messages.create, whole: one chat request to the backend, an Anthropic message back', async () => {
  const seen = fake.state.requests.length;
  const msg = await client.messages.create({ model: 'gpt-x', max_tokens: 64, system: 'Be brief.', messages: hello, temperature: 0.3 });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.match(msg.id, /^msg_/);
  assert.equal(msg.model, 'gpt-x');
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from lab' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  assert.equal(msg.usage.input_tokens, 7);
  assert.equal(msg.usage.output_tokens, 3);
  assert.equal(fake.state.requests.length, seen + 1, 'the backend got one chat completion');
  const chat = lastChatRequest();
  assert.deepEqual(chat.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }]);
  assert.equal(chat.max_tokens, 64);
  assert.equal(chat.temperature, 0.3);
});

test('SDK: messages.stream: text events, and finalMessage holds the same text, stop_reason and usage', async () => {
  const stream = client.messages.stream({ model: 'gpt-x', max_tokens: 64, messages: hello });
  const pieces = [];
  stream.on('text', (t) => pieces.push(t));
  const final = await stream.finalMessage();
  assert.deepEqual(pieces, ['Hello', ' from', ' lab']);
  assert.deepEqual(final.content, [{ type: 'text', text: pieces.join('') }]);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, 3);
  assert.equal(final.usage.input_tokens, 7);
  assert.deepEqual(lastChatRequest().stream_options, { include_usage: true }, 'the router asks the backend for usage');
});

test('raw HTTP: a streamed text answer is message_start, one text block, message_delta, message_stop', async () => {
  const events = await streamed({ model: 'gpt-x', max_tokens: 64, messages: hello });
  assert.deepEqual(events.map((e) => e.event), [
    'message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  const start = events[0].data.message;
  assert.match(start.id, /^msg_/);
  assert.equal(start.role, 'assistant');
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.deepEqual(events[1].data, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  for (const e of events.slice(2, 5)) {
    assert.equal(e.data.index, 0);
    assert.equal(e.data.delta.type, 'text_delta');
  }
  assert.equal(events.slice(2, 5).map((e) => e.data.delta.text).join(''), 'Hello from lab');
  assert.equal(events[5].data.index, 0);
  const delta = events[6].data;
  assert.deepEqual(delta.delta, { stop_reason: 'end_turn', stop_sequence: null });
  assert.equal(delta.usage.output_tokens, 3);
  assert.ok(delta.usage.cost > 0, 'billed at the upstream\'s price');
});

test('SDK: a tool: tool_use with an input object (whole and streamed), then tool_result back gives the final text', async () => {
  const first = await client.messages.create({
    model: 'tools', max_tokens: 64, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool],
    tool_choice: { type: 'auto' },
  });
  assert.equal(first.stop_reason, 'tool_use');
  assert.equal(first.content.length, 1);
  const [use] = first.content;
  assert.equal(use.type, 'tool_use');
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Paris' });
  assert.match(use.id, /^call_lab_\d+$/, 'the backend\'s call id');
  assert.deepEqual(lastChatRequest().tools, [{ type: 'function', function: {
    name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.input_schema } }]);
  assert.equal(lastChatRequest().tool_choice, 'auto');

  const streamedCall = client.messages.stream({
    model: 'tools', max_tokens: 64, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool],
  });
  let json = '';
  streamedCall.on('inputJson', (piece) => (json += piece));
  const streamedMsg = await streamedCall.finalMessage();
  assert.equal(streamedMsg.stop_reason, 'tool_use');
  assert.equal(streamedMsg.content.length, 1);
  assert.equal(streamedMsg.content[0].type, 'tool_use');
  assert.equal(streamedMsg.content[0].name, 'get_weather');
  assert.deepEqual(streamedMsg.content[0].input, { city: 'Paris' });
  assert.deepEqual(JSON.parse(json), { city: 'Paris' });
  assert.notEqual(streamedMsg.content[0].id, use.id, 'each answer\'s call has its own id');

  const second = await client.messages.create({
    model: 'tools', max_tokens: 64, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Sunny, 21 °C' }] },
    ],
  });
  assert.deepEqual(second.content, [{ type: 'text', text: 'The tool said: Sunny, 21 °C' }]);
  assert.equal(second.stop_reason, 'end_turn');
  assert.deepEqual(lastChatRequest().messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: use.id, content: 'Sunny, 21 °C' },
  ]);
});

test('raw HTTP: a streamed tool call is a tool_use block with input_json_delta pieces; stop_reason tool_use', async () => {
  const events = await streamed({ model: 'tools', max_tokens: 64, messages: hello, tools: [weatherTool] });
  const deltas = events.filter((e) => e.event === 'content_block_delta');
  assert.ok(deltas.length > 1, 'the input arrives in pieces');
  assert.deepEqual(events.map((e) => e.event), [
    'message_start', 'content_block_start', ...deltas.map(() => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop',
  ]);
  const block = events[1].data.content_block;
  assert.equal(block.type, 'tool_use');
  assert.equal(block.name, 'get_weather');
  assert.match(block.id, /^call_lab_\d+$/);
  assert.deepEqual(block.input, {});
  for (const d of deltas) {
    assert.equal(d.data.index, 0);
    assert.equal(d.data.delta.type, 'input_json_delta');
  }
  assert.deepEqual(JSON.parse(deltas.map((d) => d.data.delta.partial_json).join('')), { city: 'Paris' });
  assert.equal(events.at(-2).data.delta.stop_reason, 'tool_use');
});

test('raw HTTP: the request translates to chat: system blocks, images, documents, tool_choice, stop_sequences', async () => {
  const png = 'iVBORw0KGgo=';
  const res = await post({
    model: 'gpt-x', max_tokens: 20, top_p: 0.8, stop_sequences: ['END', '###'],
    system: [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'Be kind.' }],
    tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' },
    messages: [{ role: 'user', content: [
      { type: 'text', text: 'What are these?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
      { type: 'image', source: { type: 'url', url: 'https://example.org/cat.png' } },
      { type: 'document', title: 'report.pdf', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
    ] }],
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.json();
  const chat = lastChatRequest();
  assert.deepEqual(chat.messages, [
    { role: 'system', content: 'Be brief.\n\nBe kind.' },
    { role: 'user', content: [
      { type: 'text', text: 'What are these?' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
      { type: 'image_url', image_url: { url: 'https://example.org/cat.png' } },
      { type: 'file', file: { filename: 'report.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
    ] },
  ]);
  assert.deepEqual(chat.stop, ['END', '###']);
  assert.equal(chat.top_p, 0.8);
  assert.equal(chat.max_tokens, 20);
  assert.deepEqual(chat.tool_choice, { type: 'function', function: { name: 'get_weather' } });
  for (const [choice, expected] of [[{ type: 'any' }, 'required'], [{ type: 'none' }, 'none']]) {
    await (await post({ model: 'gpt-x', max_tokens: 5, messages: hello, tools: [weatherTool], tool_choice: choice })).json();
    assert.equal(lastChatRequest().tool_choice, expected);
  }
});

test('stop_reason: end_turn, max_tokens, tool_use, whole and streamed', async () => {
  const cut = await client.messages.create({ model: 'demo', max_tokens: 3, messages: [{ role: 'user', content: 'Tell me a story' }] });
  assert.equal(cut.stop_reason, 'max_tokens');
  assert.equal(cut.usage.output_tokens, 3);
  const cutStream = await client.messages.stream({ model: 'demo', max_tokens: 3, messages: [{ role: 'user', content: 'Tell me a story' }] }).finalMessage();
  assert.equal(cutStream.stop_reason, 'max_tokens');
  assert.deepEqual(cutStream.content, cut.content, 'the demo is deterministic: streamed and whole agree');
  const free = await client.messages.create({ model: 'demo', max_tokens: 500, messages: [{ role: 'user', content: 'Tell me a story' }] });
  assert.equal(free.stop_reason, 'end_turn');
  assert.ok(free.usage.output_tokens < 500);
  // tool_use is checked with the tools above.
});

test('keys: x-api-key and Authorization: Bearer both work, through the SDK and raw; a bad key is an authentication_error', async () => {
  for (const headers of [{ 'x-api-key': demoKey }, { authorization: `Bearer ${demoKey}` }]) {
    const res = await post({ model: 'gpt-x', max_tokens: 5, messages: hello }, headers);
    assert.equal(res.status, 200, JSON.stringify(headers));
    assert.equal((await res.json()).content[0].text, 'Hello from lab');
  }
  const viaToken = new Anthropic({ baseURL: plexus.url, authToken: demoKey, maxRetries: 0 });
  assert.equal((await viaToken.messages.create({ model: 'gpt-x', max_tokens: 5, messages: hello })).content[0].text, 'Hello from lab');

  const bad = new Anthropic({ baseURL: plexus.url, apiKey: 'sk-not-a-key', maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: 'gpt-x', max_tokens: 5, messages: hello }), (e) => {
    assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'authentication_error');
    assert.ok(!JSON.stringify(e.error).includes('sk-not-a-key'), 'the key is never echoed');
    return true;
  });
  for (const headers of [{ 'x-api-key': 'sk-wrong' }, {}]) {
    const res = await post({ model: 'gpt-x', max_tokens: 5, messages: hello }, headers);
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'authentication_error');
  }
});

test('errors before any output: Anthropic\'s shape, the HTTP status, request_id; none reaches the backend', async () => {
  const seen = fake.state.requests.length;
  const expectError = async (body, status, type) => {
    const res = await post(body);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const err = await res.json();
    assert.equal(err.type, 'error');
    assert.equal(err.error.type, type);
    assert.equal(typeof err.error.message, 'string');
    assert.ok(err.error.message.length > 0);
    assert.equal(err.request_id, res.headers.get('x-request-id'));
    return err.error.message;
  };
  assert.match(await expectError({ model: 'gpt-x', messages: hello }, 400, 'invalid_request_error'), /max_tokens/);
  assert.match(await expectError({ max_tokens: 5, messages: hello }, 400, 'invalid_request_error'), /model/);
  await expectError({ model: 'gpt-x', max_tokens: 5, messages: [] }, 400, 'invalid_request_error');
  await expectError('{"model": "gpt-x", ', 400, 'invalid_request_error');
  assert.match(await expectError({ model: 'gpt-x', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, 400, 'invalid_request_error'), /role/);
  await expectError({ model: 'gpt-x', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file' } }] }] }, 400, 'invalid_request_error');
  await expectError({ model: 'gpt-x', max_tokens: 5, messages: hello, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 400, 'invalid_request_error');
  await expectError({ model: 'nope', max_tokens: 5, messages: hello }, 404, 'not_found_error');
  await expectError({ model: 'nope', max_tokens: 5, messages: hello, stream: true }, 404, 'not_found_error');
  assert.equal(fake.state.requests.length, seen, 'no refused request reached the backend');
  // A backend that fails before answering: a 5xx in the same shape.
  const res = await post({ model: 'fail-500', max_tokens: 5, messages: hello });
  assert.ok(res.status >= 500, String(res.status));
  const body = await res.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'api_error');
  // The SDK raises them as its typed errors.
  await assert.rejects(client.messages.create({ model: 'gpt-x', messages: hello }), Anthropic.BadRequestError);
  await assert.rejects(client.messages.create({ model: 'nope', max_tokens: 5, messages: hello }), Anthropic.NotFoundError);
});

test('a backend that dies mid-stream ends the stream with an error event, never a silent cut or message_stop', async () => {
  const events = await streamed({ model: 'die-mid', max_tokens: 64, messages: hello });
  const types = events.map((e) => e.event);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'error');
  assert.ok(!types.includes('message_stop'));
  assert.ok(!types.includes('message_delta'));
  assert.equal(events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), 'partial');
  const { error } = events.at(-1).data;
  assert.equal(error.type, 'api_error');
  assert.match(error.message, /lab/);
  // The SDK raises it instead of returning a message.
  await assert.rejects(client.messages.stream({ model: 'die-mid', max_tokens: 64, messages: hello }).finalMessage(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
    assert.match(e.message, /lab/);
    return true;
  });
});

test('a whole answer carries x-plexus-receipt; its body_sha256 is the hash of the body as sent to /v1/messages', async () => {
  const body = '{"max_tokens": 9,\n "messages": [{"role": "user", "content": "receipt please"}], "model": "gpt-x"}';
  const res = await post(body);
  assert.equal(res.status, 200);
  const msg = await res.json();
  const receipt = res.headers.get('x-plexus-receipt');
  assert.ok(receipt, 'x-plexus-receipt');
  const { payload } = await verifiedReceipt(plexus.url, receipt);
  assert.equal(payload.body_sha256, bodySha256(body));
  assert.equal(payload.request_id, res.headers.get('x-request-id'));
  assert.equal(payload.prompt_tokens, msg.usage.input_tokens);
  assert.equal(payload.completion_tokens, msg.usage.output_tokens);
  assert.equal(payload.cost, msg.usage.cost);
});

test('random splits: a backend stream in 1-7 byte pieces translates to the same events as one delivered whole', async () => {
  // What a client observes of a stream, without ids.
  const observed = (events) => events.map(({ event, data }) => JSON.stringify({
    event, index: data.index, delta: data.delta,
    block: data.content_block && { ...data.content_block, id: undefined },
    usage: data.usage && { ...data.usage, cost: undefined },
  }));
  for (const [whole, split, body] of [
    ['gpt-x', 'split-gpt-x', { messages: hello }],
    ['tools', 'split-tools', { messages: hello, tools: [weatherTool] }],
  ]) {
    const expected = observed(await streamed({ model: whole, max_tokens: 64, ...body }));
    assert.ok(expected.length >= 6);
    for (let round = 0; round < 3; round++) assert.deepEqual(observed(await streamed({ model: split, max_tokens: 64, ...body })), expected, split);
  }
  const text = (await streamed({ model: 'split-gpt-x', max_tokens: 64, messages: hello }))
    .filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
  const whole = await (await post({ model: 'gpt-x', max_tokens: 64, messages: hello })).json();
  assert.equal(text, whole.content[0].text);
});

// A backend that says which stop string ended the answer (vLLM's "stop_reason") gives Anthropic's
// stop_reason "stop_sequence" with the sequence; one of its own, not the client's, is end_turn.
test('stop_sequences: the one a vLLM backend matched is stop_sequence, whole and streamed', async () => {
  const ask = { model: 'llama', max_tokens: 20, messages: hello, stop_sequences: ['nowhere', ' vLLM'] };
  const msg = await client.messages.create(ask);
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from' }]);
  assert.equal(msg.stop_reason, 'stop_sequence');
  assert.equal(msg.stop_sequence, ' vLLM');
  assert.deepEqual(vllm.state.requests.at(-1).stop, ['nowhere', ' vLLM']);

  const events = await streamed(ask);
  const text = events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
  assert.equal(text, 'Hello from');
  assert.deepEqual(events.find((e) => e.event === 'message_delta').data.delta, { stop_reason: 'stop_sequence', stop_sequence: ' vLLM' });

  const final = await client.messages.stream(ask).finalMessage();
  assert.equal(final.stop_reason, 'stop_sequence');
  assert.equal(final.stop_sequence, ' vLLM');

  const natural = await client.messages.create({ ...ask, stop_sequences: ['nowhere'] });
  assert.equal(natural.stop_reason, 'end_turn');
  assert.equal(natural.stop_sequence, null);
});
