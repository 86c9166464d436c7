// POST /v1/embeddings through the real router: the official openai package's embeddings.create
// (floats asked for, base64 asked for, and its default: it asks for base64 and decodes it itself),
// raw HTTP with the base64 decoded here, lists and token ids, the openai, llamacpp, ollama
// (/api/embed, read into OpenAI's shape) and demo adapters, failover from a 500 and from a refused
// connection, chat and embedding models kept apart, input shapes refused naming the field, the
// charge (usage.cost, the signed receipt, GET /v1/usage) and what /v1/models says each model serves.
// The router always asks a backend for floats and encodes base64 itself: the fakes record what
// they were sent, and the router's base64 is compared with the fake's own, byte for byte.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { fakeEmbedding, fakeEmbeddingBase64, startFakeOpenAI } from './support/fake_openai.mjs';
import { ollamaEmbedding, startFakeOllama } from './support/fake_ollama.mjs';
import { baseConfig, chat, demoKey, freePort, startPlexus, user } from './support/plexus.mjs';
import { bodySha256, verifiedReceipt } from './support/receipts.mjs';

const PRICE_IN = 2; // per 1k prompt tokens, on the "vectors" upstream
let vectors, spare, ollama, plexus, client, refusedPort;

before(async () => {
  vectors = await startFakeOpenAI({ name: 'vectors' });
  spare = await startFakeOpenAI({ name: 'spare' });
  ollama = await startFakeOllama();
  refusedPort = await freePort();
  const emb = (id, upstream_model) => ({ id, upstream_model, embeddings: true });
  plexus = await startPlexus(baseConfig([
    { name: 'vectors', provider: 'openai', url: vectors.url, price: { input_per_1k: PRICE_IN, output_per_1k: 5 },
      models: [emb('emb', 'text-embedding-3-small'), emb('emb-metered', 'text-embedding-3-large'), 'gpt-x', { id: 'mixed', upstream_model: 'gpt-x' }] },
    // The same model name served for embeddings by another node: /v1/models says it serves both.
    { name: 'mixed-emb', provider: 'openai', url: spare.url, models: [emb('mixed', 'text-embedding-3-small')] },
    // Failover: a node whose backend answers 500, another whose connection is refused, and one
    // that works, in that order; and a node whose backend refuses the request itself (400).
    { name: 'broken', provider: 'openai', url: spare.url, models: [emb('emb-fo', 'fail-500'), emb('emb-down', 'fail-500')] },
    { name: 'refused', provider: 'openai', url: `http://127.0.0.1:${refusedPort}/v1`, models: [emb('emb-fo2', 'text-embedding-3-small')] },
    { name: 'strict', provider: 'openai', url: spare.url, models: [emb('emb-400', 'bad-request')] },
    { name: 'backup', provider: 'openai', url: vectors.url,
      models: [emb('emb-fo', 'text-embedding-3-small'), emb('emb-fo2', 'text-embedding-3-small'), emb('emb-400', 'text-embedding-3-small')] },
    // llama-server: <root>/v1/embeddings (the fake speaks the same OpenAI shape there).
    { name: 'llama', provider: 'llamacpp', url: vectors.url, status_interval_s: 0, models: [emb('llama-emb', 'qwen3-embedding')] },
    { name: 'ollama', provider: 'ollama', url: ollama.url, status_interval_s: 0, // no /api/tags filtering
      models: [emb('nomic', 'nomic-embed-text'), emb('ollama-missing', 'missing')] },
    { name: 'demo-node', provider: 'demo', models: [{ id: 'demo-emb', embeddings: true }], options: { first_token_ms: 1, tokens_per_second: 2000 } },
  ]));
  client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
});
after(async () => {
  await plexus?.stop();
  await ollama?.close();
  await spare?.close();
  await vectors?.close();
});

const post = (body, { key = demoKey, path = '/v1/embeddings' } = {}) => fetch(`${plexus.url}${path}`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const embedRequests = (fake) => fake.state.requests.filter((r) => r.path === '/v1/embeddings');
const lastEmbed = (fake) => embedRequests(fake).at(-1);
// What the fake's ceil(chars / 4) counts for a text.
const tokensOf = (text) => Math.max(1, Math.ceil(text.length / 4));
// A base64 embedding as the float32s it holds (little-endian).
function decodeBase64(b64) {
  assert.equal(typeof b64, 'string');
  assert.match(b64, /^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');
  const buf = Buffer.from(b64, 'base64');
  assert.equal(buf.length % 4, 0);
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
}
const asFloat32 = (floats) => floats.map((x) => Math.fround(x));
const close = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('the openai SDK with encoding_format "float": OpenAI\'s shape, the client\'s model name, usage and cost', async () => {
  const input = 'The quick brown fox';
  const res = await client.embeddings.create({ model: 'emb', input, encoding_format: 'float' });
  assert.equal(res.object, 'list');
  assert.equal(res.model, 'emb', 'the name the client asked for, not the upstream\'s');
  assert.equal(res.data.length, 1);
  assert.equal(res.data[0].object, 'embedding');
  assert.equal(res.data[0].index, 0);
  assert.deepEqual(res.data[0].embedding, fakeEmbedding(input), 'the backend\'s floats, exactly');
  assert.equal(res.usage.prompt_tokens, tokensOf(input));
  assert.equal(res.usage.total_tokens, tokensOf(input));
  close(res.usage.cost, (tokensOf(input) * PRICE_IN) / 1000, 'usage.cost');
  const sent = lastEmbed(vectors);
  assert.equal(sent.body.model, 'text-embedding-3-small');
  assert.equal(sent.body.input, input);
  assert.equal(sent.body.encoding_format, 'float');
  assert.equal(sent.headers['content-type'], 'application/json');
});

test('the openai SDK\'s default: it asks for base64 and decodes it; its floats are the backend\'s as float32', async () => {
  const seen = [];
  const spy = new OpenAI({
    apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0,
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      seen.push({ request: JSON.parse(init.body), response: await res.clone().json() });
      return res;
    },
  });
  const inputs = ['alpha', 'beta gamma', 'ünïcode ✓'];
  const res = await spy.embeddings.create({ model: 'emb', input: inputs });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].request.encoding_format, 'base64', 'the SDK asked the router for base64');
  assert.ok(seen[0].response.data.every((d) => typeof d.embedding === 'string'), 'the router answered base64 strings');
  assert.equal(lastEmbed(vectors).body.encoding_format, 'float', 'the router asked the backend for floats');
  assert.equal(res.data.length, inputs.length);
  inputs.forEach((text, i) => {
    assert.equal(res.data[i].index, i);
    assert.deepEqual(res.data[i].embedding, asFloat32(fakeEmbedding(text)), `input ${i}: the SDK's decoded floats`);
  });
  assert.equal(res.usage.prompt_tokens, inputs.reduce((n, t) => n + tokensOf(t), 0));
});

test('the openai SDK with encoding_format "base64": the same string the backend itself gives for base64', async () => {
  const input = 'encode me';
  const res = await client.embeddings.create({ model: 'emb', input, encoding_format: 'base64' });
  assert.equal(typeof res.data[0].embedding, 'string');
  assert.equal(res.data[0].embedding, fakeEmbeddingBase64(fakeEmbedding(input)));
  // Byte for byte what the backend answers when asked for base64 directly.
  const direct = await (await fetch(`${vectors.url}/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input, encoding_format: 'base64' }),
  })).json();
  assert.equal(res.data[0].embedding, direct.data[0].embedding);
  assert.equal(embedRequests(vectors).at(-2).body.encoding_format, 'float', 'the router asked for floats');
});

test('raw HTTP: float and base64 answers, dimensions and user relayed, OpenAI\'s response headers', async () => {
  const input = 'raw request';
  const floatRes = await post({ model: 'emb', input, encoding_format: 'float', dimensions: 5, user: 'u-42' });
  assert.equal(floatRes.status, 200);
  assert.match(floatRes.headers.get('content-type'), /^application\/json/);
  assert.ok(floatRes.headers.get('x-request-id'));
  assert.equal(floatRes.headers.get('x-plexus-node'), 'vectors');
  const floats = await floatRes.json();
  assert.deepEqual(Object.keys(floats).sort(), ['data', 'model', 'object', 'usage']);
  assert.deepEqual(floats.data, [{ object: 'embedding', index: 0, embedding: fakeEmbedding(input, 5) }]);
  const sent = lastEmbed(vectors).body;
  assert.equal(sent.dimensions, 5);
  assert.equal(sent.user, 'u-42');
  assert.equal(sent.encoding_format, 'float');
  assert.equal(lastEmbed(vectors).headers['x-request-id'], floatRes.headers.get('x-request-id'), 'the request id goes upstream');

  const b64Res = await post({ model: 'emb', input, encoding_format: 'base64' });
  assert.equal(b64Res.status, 200);
  const b64 = await b64Res.json();
  assert.equal(b64.model, 'emb');
  const decoded = decodeBase64(b64.data[0].embedding);
  assert.equal(decoded.length, 8);
  assert.deepEqual(decoded, asFloat32(fakeEmbedding(input)));
  assert.equal(lastEmbed(vectors).body.encoding_format, 'float');
  assert.equal(b64.usage.prompt_tokens, tokensOf(input));

  // encoding_format null is the default (floats).
  const nullFormat = await (await post({ model: 'emb', input, encoding_format: null })).json();
  assert.deepEqual(nullFormat.data[0].embedding, fakeEmbedding(input));
});

test('lists: one item per input, in order, with its index; token ids and lists of token ids', async () => {
  const texts = ['one', 'two two', 'three three three', 'four'];
  const list = await (await post({ model: 'emb', input: texts, encoding_format: 'float' })).json();
  assert.deepEqual(list.data.map((d) => d.index), [0, 1, 2, 3]);
  texts.forEach((t, i) => assert.deepEqual(list.data[i].embedding, fakeEmbedding(t), t));
  assert.deepEqual(lastEmbed(vectors).body.input, texts);

  const ids = await post({ model: 'emb', input: [101, 2023, 102] });
  assert.equal(ids.status, 200);
  const one = await ids.json();
  assert.equal(one.data.length, 1);
  assert.deepEqual(one.data[0].embedding, fakeEmbedding('[101,2023,102]'));
  assert.equal(one.usage.prompt_tokens, 3);
  assert.deepEqual(lastEmbed(vectors).body.input, [101, 2023, 102]);

  const lists = await (await post({ model: 'emb', input: [[1, 2], [3, 4, 5]], encoding_format: 'base64' })).json();
  assert.equal(lists.data.length, 2);
  assert.deepEqual(decodeBase64(lists.data[1].embedding), asFloat32(fakeEmbedding('[3,4,5]')));
  assert.equal(lists.usage.prompt_tokens, 5);

  // 2048 inputs is the most one request takes.
  const many = Array.from({ length: 2048 }, (_, i) => `text ${i}`);
  const big = await post({ model: 'emb', input: many, encoding_format: 'float' });
  assert.equal(big.status, 200);
  const bigBody = await big.json();
  assert.equal(bigBody.data.length, 2048);
  assert.deepEqual(bigBody.data[2047], { object: 'embedding', index: 2047, embedding: fakeEmbedding('text 2047') });
});

test('llamacpp: <root>/v1/embeddings, relayed', async () => {
  const before = embedRequests(vectors).length;
  const res = await post({ model: 'llama-emb', input: 'from llama.cpp', encoding_format: 'base64' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'llama');
  const body = await res.json();
  assert.equal(body.model, 'llama-emb');
  assert.deepEqual(decodeBase64(body.data[0].embedding), asFloat32(fakeEmbedding('from llama.cpp')));
  assert.equal(embedRequests(vectors).length, before + 1, 'POST /v1/embeddings at the server\'s root');
  assert.equal(lastEmbed(vectors).body.model, 'qwen3-embedding');
  assert.equal(lastEmbed(vectors).body.encoding_format, 'float');
});

test('ollama: POST /api/embed with {model, input}, read into OpenAI\'s shape; usage from prompt_eval_count', async () => {
  const inputs = ['first', 'second one'];
  const res = await post({ model: 'nomic', input: inputs, encoding_format: 'float' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'ollama');
  const body = await res.json();
  assert.equal(body.object, 'list');
  assert.equal(body.model, 'nomic');
  assert.deepEqual(body.data, inputs.map((t, index) => ({ object: 'embedding', index, embedding: ollamaEmbedding(t) })));
  const evalCount = inputs.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 3)), 0); // the fake's prompt_eval_count
  assert.equal(body.usage.prompt_tokens, evalCount);
  assert.equal(body.usage.total_tokens, evalCount);
  assert.equal(body.usage.cost, 0, 'no price on this upstream');
  assert.deepEqual(ollama.state.embeds.at(-1), { model: 'nomic-embed-text', input: inputs }, 'only what /api/embed takes');

  // dimensions goes to Ollama as its own "dimensions" (it keeps that many and normalizes again).
  const short = await (await post({ model: 'nomic', input: 'short', dimensions: 3, encoding_format: 'float' })).json();
  assert.deepEqual(ollama.state.embeds.at(-1), { model: 'nomic-embed-text', input: 'short', dimensions: 3 });
  assert.deepEqual(short.data[0].embedding, ollamaEmbedding('short', 3));

  // One string, and the SDK's default (base64, decoded by the SDK).
  const sdk = await client.embeddings.create({ model: 'nomic', input: 'just one' });
  assert.equal(ollama.state.embeds.at(-1).input, 'just one');
  assert.equal(sdk.data.length, 1);
  assert.deepEqual(sdk.data[0].embedding, asFloat32(ollamaEmbedding('just one')));
  assert.equal(sdk.model, 'nomic');
});

test('ollama: token ids are a 400 naming input before any call; Ollama\'s 404 keeps its message', async () => {
  const before = ollama.state.embeds.length;
  for (const input of [[1, 2, 3], [[1, 2], [3]]]) {
    const res = await post({ model: 'nomic', input });
    assert.equal(res.status, 400, JSON.stringify(input));
    const err = (await res.json()).error;
    assert.equal(err.param, 'input');
    assert.equal(err.code, 'unsupported_value');
    assert.equal(err.type, 'invalid_request_error');
  }
  assert.equal(ollama.state.embeds.length, before, 'Ollama was not called');

  const missing = await post({ model: 'ollama-missing', input: 'hi' });
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error.message, /model 'missing' not found/);
});

test('demo: deterministic 16-dimension unit vectors, one per text', async () => {
  const a = await (await post({ model: 'demo-emb', input: ['same text', 'other text', 'same text'], encoding_format: 'float' })).json();
  assert.equal(a.model, 'demo-emb');
  assert.equal(a.data.length, 3);
  for (const d of a.data) {
    assert.equal(d.object, 'embedding');
    assert.equal(d.embedding.length, 16);
    close(Math.hypot(...d.embedding), 1, 'unit length');
  }
  assert.deepEqual(a.data[0].embedding, a.data[2].embedding, 'the same text, the same vector');
  assert.notDeepEqual(a.data[0].embedding, a.data[1].embedding);
  assert.ok(a.usage.prompt_tokens > 0);
  const again = await (await post({ model: 'demo-emb', input: 'same text', encoding_format: 'base64' })).json();
  assert.deepEqual(decodeBase64(again.data[0].embedding), asFloat32(a.data[0].embedding), 'again, and as base64');
});

test('failover: a backend\'s 500, or a refused connection, goes to the next node serving the model', async () => {
  const before = embedRequests(spare).length;
  const res = await post({ model: 'emb-fo', input: 'fail over', encoding_format: 'float' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'backup');
  const body = await res.json();
  assert.equal(body.model, 'emb-fo');
  assert.deepEqual(body.data[0].embedding, fakeEmbedding('fail over'));
  const tried = embedRequests(spare).slice(before);
  assert.deepEqual(tried.map((r) => r.body.model), ['fail-500'], 'the broken node was tried first');
  assert.equal(lastEmbed(vectors).body.model, 'text-embedding-3-small');

  const refused = await post({ model: 'emb-fo2', input: 'refused first', encoding_format: 'base64' });
  assert.equal(refused.status, 200);
  assert.equal(refused.headers.get('x-plexus-node'), 'backup');
  assert.deepEqual(decodeBase64((await refused.json()).data[0].embedding), asFloat32(fakeEmbedding('refused first')));

  // No other node: the 5xx reaches the client as an upstream error.
  const down = await post({ model: 'emb-down', input: 'nobody' });
  assert.equal(down.status, 502);
  assert.equal((await down.json()).error.type, 'upstream_error');
});

test('a backend\'s 400 is the client\'s fault: relayed, not retried elsewhere', async () => {
  const before = embedRequests(vectors).length;
  const res = await post({ model: 'emb-400', input: 'x'.repeat(40) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /maximum context length is 8 tokens/);
  assert.equal(embedRequests(vectors).length, before, 'the backup node was not asked');
});

test('chat and embedding models are kept apart: a 400 naming model, and no backend called', async () => {
  const calls = () => vectors.state.requests.length + spare.state.requests.length + ollama.state.requests.length + ollama.state.embeds.length;
  const before = calls();
  const chatRes = await chat(plexus.url, { model: 'emb', messages: user('hi') });
  assert.equal(chatRes.status, 400);
  const chatErr = (await chatRes.json()).error;
  assert.equal(chatErr.code, 'unsupported_feature');
  assert.equal(chatErr.param, 'model');
  assert.match(chatErr.message, /emb/);
  await assert.rejects(client.chat.completions.create({ model: 'nomic', messages: user('hi') }),
    (e) => e.status === 400 && e.param === 'model' && e.code === 'unsupported_feature');

  const embRes = await post({ model: 'gpt-x', input: 'hi' });
  assert.equal(embRes.status, 400);
  const embErr = (await embRes.json()).error;
  assert.equal(embErr.code, 'unsupported_feature');
  assert.equal(embErr.param, 'model');
  assert.match(embErr.message, /gpt-x/);
  assert.equal(calls(), before);

  const unknown = await post({ model: 'no-such-model', input: 'hi' });
  assert.equal(unknown.status, 404);
  const unknownErr = (await unknown.json()).error;
  assert.equal(unknownErr.code, 'model_not_found');
  assert.equal(unknownErr.param, 'model');

  // One name, two kinds of node: each request goes to the node of its kind.
  const mixedEmb = await post({ model: 'mixed', input: 'both', encoding_format: 'float' });
  assert.equal(mixedEmb.status, 200);
  assert.equal(mixedEmb.headers.get('x-plexus-node'), 'mixed-emb');
  assert.deepEqual((await mixedEmb.json()).data[0].embedding, fakeEmbedding('both'));
  const mixedChat = await chat(plexus.url, { model: 'mixed', messages: user('both') });
  assert.equal(mixedChat.status, 200);
  assert.equal(mixedChat.headers.get('x-plexus-node'), 'vectors');
  assert.equal((await mixedChat.json()).object, 'chat.completion');
});

test('bad requests: a 400 naming the field, and no backend is called', async () => {
  const calls = () => vectors.state.requests.length + spare.state.requests.length + ollama.state.embeds.length;
  const before = calls();
  const cases = [
    [{ model: 'emb' }, 'input'],
    [{ model: 'emb', input: '' }, 'input'],
    [{ model: 'emb', input: [] }, 'input'],
    [{ model: 'emb', input: [''] }, 'input'],
    [{ model: 'emb', input: ['ok', ''] }, 'input'],
    [{ model: 'emb', input: ['ok', 7] }, 'input'],
    [{ model: 'emb', input: [[]] }, 'input'],
    [{ model: 'emb', input: [-1, 2] }, 'input'],
    [{ model: 'emb', input: [1.5] }, 'input'],
    [{ model: 'emb', input: 42 }, 'input'],
    [{ model: 'emb', input: null }, 'input'],
    [{ model: 'emb', input: { text: 'hi' } }, 'input'],
    [{ model: 'emb', input: Array.from({ length: 2049 }, () => 'a') }, 'input'],
    [{ model: 'emb', input: 'hi', encoding_format: 'binary' }, 'encoding_format'],
    [{ model: 'emb', input: 'hi', encoding_format: 1 }, 'encoding_format'],
    [{ model: 'emb', input: 'hi', dimensions: 0 }, 'dimensions'],
    [{ model: 'emb', input: 'hi', dimensions: -3 }, 'dimensions'],
    [{ model: 'emb', input: 'hi', dimensions: 1.5 }, 'dimensions'],
    [{ model: 'emb', input: 'hi', dimensions: '8' }, 'dimensions'],
    [{ input: 'hi' }, 'model'],
    [{ model: '', input: 'hi' }, 'model'],
    [{ model: 5, input: 'hi' }, 'model'],
  ];
  for (const [body, param] of cases) {
    const what = JSON.stringify(body).slice(0, 80);
    const res = await post(body);
    assert.equal(res.status, 400, what);
    const err = (await res.json()).error;
    assert.equal(err.type, 'invalid_request_error', what);
    assert.equal(err.param, param, what);
    assert.equal(typeof err.message, 'string', what);
  }
  const notJson = await post('{"model": "emb", "input": ');
  assert.equal(notJson.status, 400);
  assert.equal((await notJson.json()).error.type, 'invalid_request_error');
  const noKey = await post({ model: 'emb', input: 'hi' }, { key: null });
  assert.equal(noKey.status, 401);
  await noKey.text();
  const wrongMethod = await fetch(`${plexus.url}/v1/embeddings`, { headers: { authorization: `Bearer ${demoKey}` } });
  assert.equal(wrongMethod.status, 405);
  assert.match(wrongMethod.headers.get('allow') ?? '', /POST/);
  await wrongMethod.text();
  assert.equal(calls(), before);
});

test('the charge: usage.cost, a receipt jose verifies (completion_tokens 0), and GET /v1/usage counts it', async () => {
  const answers = [];
  for (const [input, format] of [['metered one', 'float'], [['metered', 'two texts'], 'base64']]) {
    const raw = JSON.stringify({ model: 'emb-metered', input, encoding_format: format });
    const res = await post(raw);
    assert.equal(res.status, 200);
    const body = await res.json();
    const texts = [input].flat();
    const tokens = texts.reduce((n, t) => n + tokensOf(t), 0);
    assert.equal(body.usage.prompt_tokens, tokens);
    close(body.usage.cost, (tokens * PRICE_IN) / 1000, 'usage.cost');
    const receipt = res.headers.get('x-plexus-receipt');
    assert.ok(receipt, 'x-plexus-receipt on a whole answer');
    const { payload, protectedHeader } = await verifiedReceipt(plexus.url, receipt);
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.request_id, res.headers.get('x-request-id'));
    assert.equal(payload.body_sha256, bodySha256(raw), 'the hash of the body as sent');
    assert.equal(payload.model, 'emb-metered');
    assert.equal(payload.node, 'vectors');
    assert.equal(payload.prompt_tokens, tokens);
    assert.equal(payload.completion_tokens, 0);
    assert.equal(payload.cost, body.usage.cost);
    answers.push(body.usage);
  }
  const usage = await (await fetch(`${plexus.url}/v1/usage`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  const row = usage.data.find((r) => r.model === 'emb-metered');
  assert.ok(row, `a usage row for emb-metered: ${JSON.stringify(usage.data)}`);
  assert.equal(row.key, 'demo');
  assert.equal(row.requests, 2, 'every request is a row; emb-metered is asked nothing else in this file');
  assert.equal(row.prompt_tokens, answers.reduce((n, u) => n + u.prompt_tokens, 0));
  assert.equal(row.completion_tokens, 0);
  close(row.cost, answers.reduce((n, u) => n + u.cost, 0), 'the ledger\'s cost');
});

test('/v1/models says what each model serves; /v1/models/{id} the same', async () => {
  const list = await (await fetch(`${plexus.url}/v1/models`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  const serves = Object.fromEntries(list.data.map((m) => [m.id, m.serves]));
  assert.deepEqual(serves.emb, ['embeddings']);
  assert.deepEqual(serves['demo-emb'], ['embeddings']);
  assert.deepEqual(serves.nomic, ['embeddings']);
  assert.deepEqual(serves['gpt-x'], ['chat']);
  assert.deepEqual(serves.mixed, ['chat', 'embeddings'], 'chat on one node, embeddings on another');
  assert.ok(list.data.every((m) => m.object === 'model'));
  for (const [id, want] of [['emb', ['embeddings']], ['gpt-x', ['chat']], ['mixed', ['chat', 'embeddings']]]) {
    const res = await fetch(`${plexus.url}/v1/models/${id}`, { headers: { authorization: `Bearer ${demoKey}` } });
    assert.equal(res.status, 200, id);
    const model = await res.json();
    assert.equal(model.id, id);
    assert.deepEqual(model.serves, want, id);
  }
  // The SDK lists them too.
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('emb') && ids.includes('gpt-x'));
});
