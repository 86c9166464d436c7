// POST /v1/responses (OpenAI's Responses API, stateless) through the real router, translated at
// the edge into one chat-completions request to the backend (the fake sees /v1/chat/completions)
// and back: the official openai package (responses.create whole and streamed, responses.stream),
// the Vercel AI SDK's default OpenAI provider (generateText / streamText, with and without a tool
// whose result goes back as function_call + function_call_output items), and raw HTTP: event
// names, order and sequence numbers, the request's translation, OpenAI-shaped errors, a stream
// that fails half-way (an `error` event, then response.failed), max_output_tokens (incomplete),
// the receipt (its body_sha256 is the hash of the body as sent to /v1/responses), and a backend
// stream delivered in random 1-7 byte pieces translating to the same events as one delivered whole.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';
import { bodySha256, verifiedReceipt } from './support/receipts.mjs';
import { startTrickleProxy } from './support/trickle_proxy.mjs';

let fake, proxy, plexus, client;
before(async () => {
  fake = await startFakeOpenAI({ name: 'lab' });
  proxy = await startTrickleProxy(fake.url);
  plexus = await startPlexus(baseConfig([
    { name: 'lab', provider: 'openai', url: fake.url, models: ['gpt-x', 'tools', 'die-mid'],
      price: { input_per_1k: 3, output_per_1k: 5 } },
    // The same fake behind a proxy that hands its bytes on in random 1-7 byte pieces.
    { name: 'lab-split', provider: 'openai', url: proxy.url,
      models: [{ id: 'split-gpt-x', upstream_model: 'gpt-x' }, { id: 'split-tools', upstream_model: 'tools' }] },
    // The demo node honours max_tokens (finish_reason "length").
    { name: 'demo-node', provider: 'demo', models: ['demo'], options: { first_token_ms: 1, tokens_per_second: 2000 } },
  ]));
  client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
});
after(async () => {
  await plexus?.stop();
  await proxy?.close();
  await fake?.close();
});

const weatherTool = {
  type: 'function', name: 'get_weather', description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

const post = (body, { key = demoKey, headers = {} } = {}) => fetch(`${plexus.url}/v1/responses`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

// A Responses stream's events: [{event, data}] with data parsed. Every event has both lines.
function parseEvents(text) {
  assert.ok(text.endsWith('\n\n'), 'the stream ends after a whole event');
  return text.split('\n\n').filter(Boolean).map((block) => {
    const m = block.match(/^event: (.+)\ndata: (.+)$/);
    assert.ok(m, `an "event:" line then a "data:" line: ${JSON.stringify(block)}`);
    return { event: m[1], data: JSON.parse(m[2]) };
  });
}

// Checks what every Responses stream must hold and returns its events.
async function streamed(body) {
  const res = await post({ ...body, stream: true });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  assert.ok(!text.includes('[DONE]'), 'the Responses API has no [DONE]');
  const events = parseEvents(text);
  events.forEach((e, i) => {
    assert.equal(e.data.type, e.event, 'the event line names the data\'s type');
    assert.equal(e.data.sequence_number, i, 'sequence_number counts every event from 0');
  });
  assert.deepEqual(events.slice(0, 2).map((e) => e.event), ['response.created', 'response.in_progress']);
  assert.equal(events[0].data.response.status, 'in_progress');
  assert.match(events[0].data.response.id, /^resp_/);
  for (const e of events.filter((x) => x.data.response)) assert.equal(e.data.response.id, events[0].data.response.id);
  return events;
}

const textOf = (content) => typeof content === 'string' ? content : content.map((p) => p.text ?? '').join('');
const lastChatRequest = () => fake.state.requests.at(-1).body;

test('openai SDK: responses.create, whole, becomes one chat request and comes back as a response', async () => {
  const seen = fake.state.requests.length;
  const r = await client.responses.create({ model: 'gpt-x', instructions: 'Be brief.', input: 'Say hello', temperature: 0.5 });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'gpt-x');
  assert.equal(r.output.length, 1);
  const [item] = r.output;
  assert.equal(item.type, 'message');
  assert.equal(item.role, 'assistant');
  assert.match(item.id, /^msg_/);
  assert.deepEqual(item.content.map((c) => [c.type, c.text]), [['output_text', 'Hello from lab']]);
  assert.deepEqual(item.content[0].annotations, []);
  assert.equal(r.output_text, 'Hello from lab');
  assert.equal(r.usage.input_tokens, 7);
  assert.equal(r.usage.output_tokens, 3);
  assert.equal(r.usage.total_tokens, 10);
  assert.ok(r.usage.cost > 0, 'billed at the upstream\'s price');
  // The backend got one chat request (the fake answers nothing but /v1/chat/completions).
  assert.equal(fake.state.requests.length, seen + 1);
  const chat = lastChatRequest();
  assert.deepEqual(chat.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }]);
  assert.equal(chat.temperature, 0.5);
  assert.equal(chat.stream, undefined);
});

test('openai SDK: responses.create with stream: true gives the events in order; response.completed holds the text', async () => {
  const stream = await client.responses.create({ model: 'gpt-x', input: 'Say hello', stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(deltas, 'Hello from lab');
  const added = events.find((e) => e.type === 'response.output_item.added');
  for (const e of events.slice(3, -1)) assert.equal(e.item_id ?? e.item.id, added.item.id, `${e.type} is about the one message`);
  assert.equal(events.find((e) => e.type === 'response.output_text.done').text, deltas);
  const completed = events.at(-1).response;
  assert.equal(completed.status, 'completed');
  assert.equal(completed.output[0].content[0].text, deltas);
  assert.equal(completed.usage.output_tokens, 3);
  assert.equal(completed.usage.total_tokens, completed.usage.input_tokens + 3);
  assert.ok(completed.usage.cost > 0);
  assert.deepEqual(lastChatRequest().stream_options, { include_usage: true }, 'the router asks the backend for usage');

  // The SDK's own accumulator (responses.stream) checks each event against the item it names
  // and builds the same answer from them. (output_text is a convenience of the SDKs, not a
  // field of the streamed response; this SDK adds it to whole answers only.)
  const helper = client.responses.stream({ model: 'gpt-x', input: 'Say hello' });
  let helperDeltas = '';
  helper.on('response.output_text.delta', (e) => (helperDeltas += e.delta));
  const final = await helper.finalResponse();
  assert.equal(helperDeltas, 'Hello from lab');
  assert.equal(final.status, 'completed');
  assert.deepEqual(final.output.map((item) => item.content.map((c) => c.text).join('')), [helperDeltas]);
});

test('openai SDK: a function tool is called, and its output goes back as input items', async () => {
  const first = await client.responses.create({ model: 'tools', input: 'Weather in Paris?', tools: [weatherTool], tool_choice: 'auto' });
  assert.equal(first.status, 'completed');
  assert.equal(first.output.length, 1);
  const [call] = first.output;
  assert.equal(call.type, 'function_call');
  assert.match(call.id, /^fc_/);
  assert.match(call.call_id, /^call_lab_\d+$/, 'the backend\'s call id');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.equal(call.status, 'completed');
  assert.equal(first.output_text, '');
  assert.deepEqual(lastChatRequest().tools, [{ type: 'function', function: {
    name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.parameters } }]);
  assert.equal(lastChatRequest().tool_choice, 'auto');

  const second = await client.responses.create({
    model: 'tools', tools: [weatherTool],
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21 °C' },
    ],
  });
  assert.equal(second.output_text, 'The tool said: Sunny, 21 °C');
  assert.deepEqual(lastChatRequest().messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }] },
    { role: 'tool', tool_call_id: call.call_id, content: 'Sunny, 21 °C' },
  ]);
});

// The Vercel AI SDK's default provider: openai(model) speaks the Responses API.
function aiProvider() {
  const urls = [];
  const provider = createOpenAI({
    baseURL: `${plexus.url}/v1`, apiKey: demoKey,
    fetch: (url, init) => {
      urls.push(String(url));
      return fetch(url, init);
    },
  });
  return { provider, urls };
}

test('AI SDK: generateText and streamText through /v1/responses', async () => {
  const { provider, urls } = aiProvider();
  const seen = fake.state.requests.length;
  const r = await generateText({ model: provider('gpt-x'), prompt: 'Say hello' });
  assert.deepEqual(urls, [`${plexus.url}/v1/responses`], 'the SDK spoke the Responses API');
  assert.equal(fake.state.requests.length, seen + 1, 'and the backend got one chat completion');
  assert.equal(textOf(lastChatRequest().messages.at(-1).content), 'Say hello');
  assert.equal(r.text, 'Hello from lab');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.usage.inputTokens, 7);
  assert.equal(r.usage.outputTokens, 3);

  const s = streamText({ model: provider('gpt-x'), prompt: 'Say hello' });
  const pieces = [];
  for await (const piece of s.textStream) pieces.push(piece);
  assert.equal(pieces.join(''), 'Hello from lab');
  assert.ok(pieces.length > 1, 'streamed in pieces');
  assert.equal(await s.text, 'Hello from lab');
  assert.equal(await s.finishReason, 'stop');
  assert.equal((await s.usage).outputTokens, 3);
  assert.equal(urls.length, 2);
  assert.equal(lastChatRequest().stream, true);
});

function weatherTools(calls) {
  return {
    get_weather: tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        calls.push(city);
        return `Sunny in ${city}`;
      },
    }),
  };
}

// What the second step sent the backend: the call, then its result, in chat's shape.
function assertToolRoundTrip(callId) {
  const msgs = lastChatRequest().messages;
  const assistant = msgs.at(-2);
  const result = msgs.at(-1);
  assert.equal(assistant.role, 'assistant');
  assert.equal(assistant.tool_calls.length, 1);
  assert.equal(assistant.tool_calls[0].id, callId);
  assert.equal(assistant.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments), { city: 'Paris' });
  assert.equal(result.role, 'tool');
  assert.equal(result.tool_call_id, callId);
  assert.match(result.content, /Sunny in Paris/);
  return result.content;
}

test('AI SDK: generateText with a tool: the call, its result back (function_call + function_call_output), the final text', async () => {
  const { provider, urls } = aiProvider();
  const calls = [];
  const r = await generateText({
    model: provider('tools'), prompt: 'Weather in Paris?', tools: weatherTools(calls), stopWhen: stepCountIs(3),
  });
  assert.deepEqual(calls, ['Paris'], 'the tool ran once, with the arguments the model chose');
  assert.equal(r.steps.length, 2);
  assert.equal(r.steps[0].finishReason, 'tool-calls');
  const [call] = r.steps[0].toolCalls;
  assert.equal(call.toolName, 'get_weather');
  assert.deepEqual(call.input, { city: 'Paris' });
  assert.match(call.toolCallId, /^call_lab_\d+$/);
  assert.deepEqual(urls, [`${plexus.url}/v1/responses`, `${plexus.url}/v1/responses`]);
  const toolText = assertToolRoundTrip(call.toolCallId);
  assert.equal(r.text, `The tool said: ${toolText}`);
  assert.equal(r.finishReason, 'stop');
});

test('AI SDK: streamText with a tool: the same round trip, streamed', async () => {
  const { provider } = aiProvider();
  const calls = [];
  const s = streamText({
    model: provider('tools'), prompt: 'Weather in Paris?', tools: weatherTools(calls), stopWhen: stepCountIs(3),
  });
  let text = '';
  for await (const piece of s.textStream) text += piece;
  const steps = await s.steps;
  assert.equal(steps.length, 2);
  assert.deepEqual(calls, ['Paris']);
  const [call] = steps[0].toolCalls;
  assert.deepEqual(call.input, { city: 'Paris' });
  const toolText = assertToolRoundTrip(call.toolCallId);
  assert.equal(lastChatRequest().stream, true);
  assert.equal(text, `The tool said: ${toolText}`);
  assert.equal(await s.text, text);
});

test('AI SDK: a second turn that sends the first answer back works with store: false; with the SDK\'s default (store) it is a clear 400', async () => {
  const { provider } = aiProvider();
  const first = await generateText({ model: provider('gpt-x'), prompt: 'Say hello' });
  const messages = [{ role: 'user', content: 'Say hello' }, ...first.response.messages, { role: 'user', content: 'Again' }];
  const second = await generateText({ model: provider('gpt-x'), messages, providerOptions: { openai: { store: false } } });
  assert.equal(second.text, 'Hello from lab');
  assert.deepEqual(lastChatRequest().messages.map((m) => [m.role, textOf(m.content)]),
    [['user', 'Say hello'], ['assistant', 'Hello from lab'], ['user', 'Again']]);
  // The SDK assumes the server stored the first answer and refers to it (item_reference); this
  // router stores no responses, so it says so rather than answering without the reference.
  await assert.rejects(generateText({ model: provider('gpt-x'), messages, maxRetries: 0 }), (e) => {
    const { error } = JSON.parse(e.responseBody);
    assert.equal(e.statusCode, 400);
    assert.equal(error.code, 'unsupported_parameter');
    assert.equal(error.param, 'input[1].type');
    return true;
  });
});

test('raw HTTP: a streamed tool call is output_item.added, arguments deltas, arguments.done, output_item.done', async () => {
  const events = await streamed({ model: 'tools', input: 'Weather?', tools: [weatherTool] });
  const types = events.map((e) => e.event);
  const deltas = events.filter((e) => e.event === 'response.function_call_arguments.delta');
  assert.ok(deltas.length > 1, 'the arguments arrive in pieces');
  assert.deepEqual(types, [
    'response.created', 'response.in_progress', 'response.output_item.added',
    ...deltas.map(() => 'response.function_call_arguments.delta'),
    'response.function_call_arguments.done', 'response.output_item.done', 'response.completed',
  ]);
  const added = events[2].data;
  assert.equal(added.output_index, 0);
  assert.equal(added.item.type, 'function_call');
  assert.equal(added.item.name, 'get_weather');
  assert.match(added.item.call_id, /^call_lab_\d+$/);
  assert.equal(added.item.arguments, '');
  for (const e of events.slice(3, -1)) assert.equal(e.data.item_id ?? e.data.item.id, added.item.id);
  const args = deltas.map((e) => e.data.delta).join('');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  assert.equal(events.at(-3).data.arguments, args);
  assert.deepEqual(events.at(-2).data.item, { ...added.item, arguments: args, status: 'completed' });
  const done = events.at(-1).data.response;
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.output, [events.at(-2).data.item]);
  assert.equal(done.usage.output_tokens, deltas.length);
});

test('raw HTTP: input items translate to chat messages (instructions, developer, parts, images)', async () => {
  const image = 'data:image/png;base64,iVBORw0KGgo=';
  const res = await post({
    model: 'gpt-x', instructions: 'Be brief.',
    input: [
      { role: 'developer', content: 'Answer in English.' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: image }] },
      { role: 'assistant', content: [{ type: 'output_text', text: 'A pixel.' }] },
      { role: 'user', content: 'Sure?' },
    ],
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).output_text, 'Hello from lab');
  assert.deepEqual(lastChatRequest().messages, [
    { role: 'system', content: 'Be brief.' },
    { role: 'system', content: 'Answer in English.' },
    { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: image } }] },
    { role: 'assistant', content: 'A pixel.' },
    { role: 'user', content: 'Sure?' },
  ]);
});

test('raw HTTP: tool_choice, text.format and the sampling fields translate to chat\'s', async () => {
  const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
  const res = await post({
    model: 'gpt-x', input: 'hi', tools: [weatherTool], tool_choice: { type: 'function', name: 'get_weather' },
    text: { format: { type: 'json_schema', name: 'reply', schema, strict: true } }, max_output_tokens: 50, top_p: 0.9,
  });
  assert.equal(res.status, 200);
  const r = await res.json();
  assert.deepEqual(r.text, { format: { type: 'json_schema', name: 'reply', schema, strict: true } }, 'the response repeats the request\'s text');
  const chat = lastChatRequest();
  assert.deepEqual(chat.tool_choice, { type: 'function', function: { name: 'get_weather' } });
  assert.deepEqual(chat.response_format, { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } });
  assert.equal(chat.max_tokens, 50);
  assert.equal(chat.top_p, 0.9);
  await (await post({ model: 'gpt-x', input: 'hi', text: { format: { type: 'json_object' } } })).json();
  assert.deepEqual(lastChatRequest().response_format, { type: 'json_object' });
});

test('raw HTTP: errors before any output are OpenAI error bodies with their status; none reaches the backend', async () => {
  const seen = fake.state.requests.length;
  const expectError = async (body, status, param, code, opts) => {
    const res = await post(body, opts);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const { error } = await res.json();
    assert.equal(typeof error.message, 'string');
    assert.ok(error.message.length > 0);
    assert.equal(error.param, param);
    if (code !== undefined) assert.equal(error.code, code);
    return error;
  };
  assert.equal((await expectError({ input: 'hi' }, 400, 'model')).type, 'invalid_request_error');
  await expectError({ model: 'gpt-x' }, 400, 'input');
  await expectError('{"model": "gpt-x", "input": ', 400, null, 'invalid_json');
  await expectError({ model: 'gpt-x', input: 'hi', previous_response_id: 'resp_123' }, 400, 'previous_response_id', 'unsupported_parameter');
  await expectError({ model: 'gpt-x', input: 'hi', conversation: 'conv_123' }, 400, 'conversation', 'unsupported_parameter');
  await expectError({ model: 'gpt-x', input: 'hi', background: true }, 400, 'background', 'unsupported_parameter');
  const item = await expectError({ model: 'gpt-x', input: [{ role: 'user', content: 'hi' }, { type: 'bogus' }] }, 400, 'input[1].type');
  assert.match(item.message, /bogus/);
  await expectError({ model: 'gpt-x', input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 400, 'input[0].content[0].text');
  await expectError({ model: 'gpt-x', input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 400, 'input[0].call_id');
  await expectError({ model: 'gpt-x', input: 'hi', max_output_tokens: 0 }, 400, 'max_output_tokens');
  await expectError({ model: 'gpt-x', input: 'hi', tools: [{ type: 'code_interpreter' }] }, 400, 'tools[0].type');
  await expectError({ model: 'nope', input: 'hi' }, 404, 'model', 'model_not_found');
  await expectError({ model: 'gpt-x', input: 'hi' }, 401, null, 'invalid_api_key', { key: 'sk-wrong' });
  await expectError({ model: 'gpt-x', input: 'hi' }, 401, null, 'missing_api_key', { key: null });
  // A streamed request that fails before its first event is a plain error too.
  const res = await post({ model: 'nope', input: 'hi', stream: true });
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error.code, 'model_not_found');
  assert.equal(fake.state.requests.length, seen, 'no refused request reached the backend');
  // The SDK raises them as its typed errors.
  await assert.rejects(client.responses.create({ model: 'gpt-x', input: 'hi', previous_response_id: 'resp_1' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'previous_response_id');
    return true;
  });
});

test('raw HTTP: a backend that dies mid-stream ends the stream with an error event, then response.failed', async () => {
  const events = await streamed({ model: 'die-mid', input: 'hi' });
  const types = events.map((e) => e.event);
  assert.deepEqual(types.slice(-2), ['error', 'response.failed'], 'never a silent cut');
  assert.ok(!types.includes('response.completed'));
  assert.equal(events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join(''), 'partial');
  const error = events.at(-2).data;
  assert.equal(typeof error.code, 'string');
  assert.match(error.message, /lab/);
  assert.ok('param' in error);
  const failed = events.at(-1).data.response;
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error.code, error.code);
  assert.equal(failed.error.message, error.message);
  // The SDK surfaces it as an error, not as a finished answer.
  await assert.rejects(async () => {
    for await (const e of await client.responses.create({ model: 'die-mid', input: 'hi', stream: true })) void e;
  });
});

test('raw HTTP: max_output_tokens stops the answer: status incomplete, whole and streamed', async () => {
  const res = await post({ model: 'demo', input: 'Tell me a story', max_output_tokens: 3 });
  const r = await res.json();
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.max_output_tokens, 3);
  assert.equal(r.usage.output_tokens, 3);
  assert.ok(r.output_text.length > 0);

  const events = await streamed({ model: 'demo', input: 'Tell me a story', max_output_tokens: 3 });
  assert.equal(events.at(-1).event, 'response.incomplete');
  const last = events.at(-1).data.response;
  assert.equal(last.status, 'incomplete');
  assert.deepEqual(last.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(last.usage.output_tokens, 3);
  assert.equal(events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join(''), r.output_text,
    'the demo is deterministic: streamed and whole agree');

  // Without a limit the same model finishes: completed.
  const free = await (await post({ model: 'demo', input: 'Tell me a story', max_output_tokens: 500 })).json();
  assert.equal(free.status, 'completed');
  assert.equal(free.incomplete_details, null);
});

test('a whole answer carries x-plexus-receipt; its body_sha256 is the hash of the body as sent to /v1/responses', async () => {
  // Spacing and key order of our own: the hash must be of these bytes, not of the chat translation.
  const body = '{ "input" : "receipt please",\n  "model": "gpt-x", "instructions": "Sign it." }';
  const res = await post(body);
  assert.equal(res.status, 200);
  const answer = await res.json();
  const receipt = res.headers.get('x-plexus-receipt');
  assert.ok(receipt, 'x-plexus-receipt');
  const { payload } = await verifiedReceipt(plexus.url, receipt);
  assert.equal(payload.body_sha256, bodySha256(body));
  assert.equal(payload.request_id, res.headers.get('x-request-id'));
  assert.equal(payload.model, 'gpt-x');
  assert.equal(payload.prompt_tokens, answer.usage.input_tokens);
  assert.equal(payload.completion_tokens, answer.usage.output_tokens);
  assert.equal(payload.cost, answer.usage.cost);
});

test('random splits: a backend stream in 1-7 byte pieces translates to the same events as one delivered whole', async () => {
  // What a client observes of a stream, without ids and clocks.
  const observed = (events) => events.map(({ event, data }) => JSON.stringify({
    event, n: data.sequence_number, delta: data.delta, text: data.text, arguments: data.arguments,
    item: data.item && { type: data.item.type, name: data.item.name, arguments: data.item.arguments, status: data.item.status },
    status: data.response?.status, usage: data.response?.usage && { ...data.response.usage, cost: undefined },
  }));
  for (const [whole, split, body] of [
    ['gpt-x', 'split-gpt-x', { input: 'hi' }],
    ['tools', 'split-tools', { input: 'Weather?', tools: [weatherTool] }],
  ]) {
    const expected = observed(await streamed({ model: whole, ...body }));
    assert.ok(expected.length >= 8);
    for (let round = 0; round < 3; round++) assert.deepEqual(observed(await streamed({ model: split, ...body })), expected, split);
  }
  const text = (await streamed({ model: 'split-gpt-x', input: 'hi' }))
    .filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join('');
  const wholeAnswer = await (await post({ model: 'gpt-x', input: 'hi' })).json();
  assert.equal(text, wholeAnswer.output_text);
});
