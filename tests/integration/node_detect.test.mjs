// plexus-node finding its backend: fakes that answer like Ollama, llama.cpp's server, LM Studio,
// vLLM and a plain OpenAI-compatible server, each told apart by what its own endpoints say (never
// by its port), then ports that answer like none of them; and, end to end, a node that found its
// backend joining a router and serving a chat with it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startFakeLlamaCpp } from './support/fake_llamacpp.mjs';
import { startFakeLmStudio } from './support/fake_lmstudio.mjs';
import { startFakeOllama } from './support/fake_ollama.mjs';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { startFakeVllm } from './support/fake_vllm.mjs';
import { freePort, listNodes, networkConfig, nodeBin, startNode, startRouter } from './support/nodes.mjs';
import { chat, sseEvents, user } from './support/plexus.mjs';
import { serve } from './support/serve.mjs';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});
async function fake(started) {
  const f = await started;
  cleanup.push(() => f.close());
  return f;
}
const baseOf = (f) => f.url.replace(/\/v1$/, ''); // fake_openai's url carries /v1

// A server that answers every path the same way: a web page, or a JSON 404.
async function answering(status, type, body) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
  });
  const s = await serve(server, {});
  cleanup.push(() => s.close());
  return `http://127.0.0.1:${s.port}`;
}

// plexus-node with these arguments, to its exit.
function runNode(args) {
  return new Promise((resolve) => {
    execFile(nodeBin, args, { timeout: 30000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }));
  });
}

// --detect-only: the one JSON line on stdout, and stderr (which names the kind it found).
async function detect(args) {
  const r = await runNode(['--detect-only', ...args]);
  assert.equal(r.code, 0, `plexus-node --detect-only ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stdout, got:\n${r.stdout}`);
  return { found: JSON.parse(lines[0]), stderr: r.stderr };
}

describe('each kind of backend, alone', () => {
  test('Ollama: /api/version and /api/tags; hot from /api/ps, context_length too', async () => {
    const ollama = await fake(startFakeOllama({ contextLength: 8192 }));
    const { found, stderr } = await detect(['--probe', ollama.url]);
    assert.deepEqual(found, {
      backend: 'ollama', provider: 'ollama', url: ollama.url,
      models: [
        { id: 'llama3.2:latest', hot: true, context_length: 8192 },
        { id: 'qwen2.5:7b', hot: false, context_length: 8192 },
      ],
    });
    assert.match(stderr, new RegExp(`found Ollama at ${ollama.url} \\(2 model\\(s\\), 1 loaded\\)`));

    // An Ollama older than "context_length" in /api/ps, with nothing loaded: nothing is hot.
    const cold = await fake(startFakeOllama({ loaded: [] }));
    const second = await detect(['--probe', cold.url]);
    assert.deepEqual(second.found.models, [
      { id: 'llama3.2:latest', hot: false, context_length: 0 },
      { id: 'qwen2.5:7b', hot: false, context_length: 0 },
    ]);
  });

  test('llama.cpp server: /props with default_generation_settings (though it answers /api/tags too)', async () => {
    const llama = await fake(startFakeLlamaCpp({ alias: 'qwen2.5-0.5b', nCtx: 4096 }));
    const tags = await (await fetch(`${llama.url}/api/tags`)).json();
    assert.equal(tags.models[0].name, 'qwen2.5-0.5b', 'the fake answers Ollama clients, as llama-server does');
    const { found, stderr } = await detect(['--probe', llama.url]);
    assert.deepEqual(found, {
      backend: 'llamacpp', provider: 'llamacpp', url: llama.url,
      models: [{ id: 'qwen2.5-0.5b', hot: true, context_length: 4096 }],
    });
    assert.match(stderr, /found llama\.cpp server at /);
  });

  test('LM Studio: /api/v0/models; chat models only, hot = state "loaded", served through /v1', async () => {
    const lms = await fake(startFakeLmStudio());
    const unknown = await fetch(`${lms.url}/x`);
    assert.equal(unknown.status, 200, 'LM Studio answers unknown paths with 200');
    assert.deepEqual(await unknown.json(), { error: 'Unexpected endpoint or method. (GET /x)' });

    const { found, stderr } = await detect(['--probe', lms.url]);
    assert.deepEqual(found, {
      backend: 'lmstudio', provider: 'openai', url: `${lms.url}/v1`,
      // the embeddings model is left out; context_length is the loaded model's max_context_length
      models: [
        { id: 'qwen2-vl-7b-instruct', hot: false, context_length: 131072 },
        { id: 'meta-llama-3.1-8b-instruct', hot: true, context_length: 131072 },
      ],
    });
    assert.match(stderr, new RegExp(`found LM Studio at ${lms.url} \\(2 model\\(s\\), 1 loaded\\)`));

    // Nothing loaded: nothing hot, and the context length is the largest any chat model takes.
    for (const m of lms.state.models) m.state = 'not-loaded';
    const second = await detect(['--probe', lms.url]);
    assert.deepEqual(second.found.models, [
      { id: 'qwen2-vl-7b-instruct', hot: false, context_length: 131072 },
      { id: 'meta-llama-3.1-8b-instruct', hot: false, context_length: 131072 },
    ]);
  });

  test('vLLM: /version and owned_by "vllm"; every model (LoRA adapters too) hot, context from max_model_len', async () => {
    const vllm = await fake(startFakeVllm({ maxModelLen: 16384, loras: ['sql-lora'] }));
    const { found, stderr } = await detect(['--probe', vllm.url]);
    assert.deepEqual(found, {
      backend: 'vllm', provider: 'openai', url: `${vllm.url}/v1`,
      models: [
        { id: 'meta-llama/Llama-3.1-8B-Instruct', hot: true, context_length: 16384 },
        { id: 'sql-lora', hot: true, context_length: 16384 },
      ],
    });
    assert.match(stderr, new RegExp(`found vLLM at ${vllm.url} \\(2 model\\(s\\), 2 loaded\\)`));
  });

  test('any other OpenAI-compatible server: /v1/models; what is loaded is unknown, so all are offered hot', async () => {
    const openai = await fake(startFakeOpenAI({ models: ['gpt-4o-mini', 'gpt-4o'] }));
    const { found, stderr } = await detect(['--probe', baseOf(openai)]);
    assert.deepEqual(found, {
      backend: 'openai', provider: 'openai', url: `${baseOf(openai)}/v1`,
      models: [
        { id: 'gpt-4o-mini', hot: true, context_length: 0 },
        { id: 'gpt-4o', hot: true, context_length: 0 },
      ],
    });
    assert.match(stderr, /found OpenAI-compatible server at /);
  });

  test('a trailing slash on the probed URL changes nothing', async () => {
    const ollama = await fake(startFakeOllama());
    const { found } = await detect(['--probe', `${ollama.url}/`]);
    assert.equal(found.url, ollama.url);
    assert.equal(found.provider, 'ollama');
  });
});

describe('ports that answer like none of them', () => {
  let html, notFound, closed;
  before(async () => {
    html = await answering(200, 'text/html; charset=utf-8', '<!doctype html><html><body><h1>It works!</h1></body></html>');
    notFound = await answering(404, 'application/json', '{"error":"not found"}');
    closed = `http://127.0.0.1:${await freePort()}`;
  });

  test('only those: exit 1, and stderr says what it looked for and where', async () => {
    const r = await runNode(['--detect-only', '--probe', [html, notFound, closed].join(',')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no LLM backend found/);
    assert.match(r.stderr, /llama\.cpp, Ollama, LM Studio, vLLM and OpenAI-compatible servers/);
    for (const url of [html, notFound, closed]) assert.ok(r.stderr.includes(url), `stderr names ${url}:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, / info found /);
  });

  test('those first and an Ollama last: Ollama is the one', async () => {
    const ollama = await fake(startFakeOllama());
    const { found, stderr } = await detect(['--probe', [html, notFound, closed, ollama.url].join(',')]);
    assert.equal(found.backend, 'ollama');
    assert.equal(found.provider, 'ollama');
    assert.equal(found.url, ollama.url);
    assert.deepEqual(found.models.map((m) => [m.id, m.hot]), [['llama3.2:latest', true], ['qwen2.5:7b', false]]);
    assert.equal(stderr.match(/ info found /g)?.length, 1, stderr);
  });

  test('two real backends: the first in --probe order is served, both are reported', async () => {
    const vllm = await fake(startFakeVllm());
    const lms = await fake(startFakeLmStudio());
    const { found, stderr } = await detect(['--probe', [html, vllm.url, lms.url].join(',')]);
    assert.equal(found.url, `${vllm.url}/v1`);
    assert.deepEqual(found.models.map((m) => m.id), ['meta-llama/Llama-3.1-8B-Instruct']);
    assert.match(stderr, /found vLLM at /);
    assert.match(stderr, /found LM Studio at /);
  });
});

describe('--backend URL', () => {
  test('a backend named outright is identified just as a probed one', async () => {
    const lms = await fake(startFakeLmStudio());
    const ollama = await fake(startFakeOllama());
    const vllm = await fake(startFakeVllm());
    for (const url of [lms.url, ollama.url, vllm.url]) {
      const probed = await detect(['--probe', url]);
      const named = await detect(['--backend', url]);
      assert.deepEqual(named.found, probed.found, url);
    }
  });

  test('a server that is none of them: exit 1, saying to pass --provider and --models; with them it is served', async () => {
    const html = await answering(200, 'text/html', '<html><body>hello</body></html>');
    const r = await runNode(['--detect-only', '--backend', html]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(html), r.stderr);
    assert.match(r.stderr, /--provider and --models/);

    const forced = await detect(['--backend', html, '--provider', 'openai', '--models', 'a,b']);
    assert.deepEqual(forced.found, {
      backend: 'openai', provider: 'openai', url: html,
      models: [{ id: 'a', hot: false, context_length: 0 }, { id: 'b', hot: false, context_length: 0 }],
    });
  });
});

describe('end to end: a node that found its backend serves the router', () => {
  let router, ollama, lms, vllm, llama;
  before(async () => {
    ollama = await fake(startFakeOllama({ contextLength: 8192 }));
    lms = await fake(startFakeLmStudio());
    vllm = await fake(startFakeVllm());
    llama = await fake(startFakeLlamaCpp({ alias: 'qwen2.5-0.5b', nCtx: 4096 }));
    router = await startRouter(networkConfig());
    cleanup.push(() => router.stop());
    for (const [name, f] of [['ollama-box', ollama], ['lmstudio-box', lms], ['vllm-box', vllm], ['llama-box', llama]]) {
      const n = await startNode(router, { name, demo: false, args: ['--probe', f.url] });
      cleanup.push(() => n.stop());
    }
  });

  test('each node registered what its backend offers', async () => {
    const nodes = await listNodes(router);
    const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
    const models = (id) => byId[id].models.map((m) => [m.id, m.hot, m.context_length]);
    assert.deepEqual(models('ollama-box@lab'), [['llama3.2:latest', true, 8192], ['qwen2.5:7b', false, 8192]]);
    assert.deepEqual(models('lmstudio-box@lab'), [['qwen2-vl-7b-instruct', false, 131072], ['meta-llama-3.1-8b-instruct', true, 131072]]);
    assert.deepEqual(models('vllm-box@lab'), [['meta-llama/Llama-3.1-8B-Instruct', true, 8192]]);
    assert.deepEqual(models('llama-box@lab'), [['qwen2.5-0.5b', true, 4096]]);
  });

  test('Ollama: a chat through the router is answered by Ollama, whole and streamed', async () => {
    const whole = await chat(router.url, { model: 'llama3.2:latest', messages: user('hi') });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('x-plexus-node'), 'ollama-box@lab');
    assert.equal((await whole.json()).choices[0].message.content, 'Hello from ollama');
    assert.equal(ollama.state.requests.at(-1).model, 'llama3.2:latest');

    const streamed = await chat(router.url, { model: 'llama3.2:latest', messages: user('hi'), stream: true });
    assert.equal(streamed.status, 200);
    const events = await sseEvents(streamed);
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e)).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
    assert.equal(text, 'Hello from ollama');
    assert.equal(ollama.state.requests.at(-1).stream, true);
  });

  test('LM Studio: a chat through the router reaches its /v1/chat/completions, whole and streamed', async () => {
    const whole = await chat(router.url, { model: 'meta-llama-3.1-8b-instruct', messages: user('hi') });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('x-plexus-node'), 'lmstudio-box@lab');
    assert.equal((await whole.json()).choices[0].message.content, 'Hello from LM Studio');
    assert.equal(lms.state.requests.at(-1).model, 'meta-llama-3.1-8b-instruct');

    const streamed = await chat(router.url, { model: 'meta-llama-3.1-8b-instruct', messages: user('hi'), stream: true });
    assert.equal(streamed.status, 200);
    const events = await sseEvents(streamed);
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e)).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
    assert.equal(text, 'Hello from LM Studio');
  });

  test('vLLM and llama.cpp: answered by each', async () => {
    for (const [model, node, content] of [
      ['meta-llama/Llama-3.1-8B-Instruct', 'vllm-box@lab', 'Hello from vLLM'],
      ['qwen2.5-0.5b', 'llama-box@lab', 'Hi from llama'],
    ]) {
      const res = await chat(router.url, { model, messages: user('hi') });
      assert.equal(res.status, 200, model);
      assert.equal(res.headers.get('x-plexus-node'), node);
      assert.equal((await res.json()).choices[0].message.content, content);
    }
    assert.equal(vllm.state.requests.at(-1).model, 'meta-llama/Llama-3.1-8B-Instruct');
    assert.equal(llama.state.requests.at(-1).model, 'qwen2.5-0.5b');
  });
});
