// A fake LM Studio server (default port 1234), speaking its REST API v0 and its OpenAI-compatible
// endpoints the way LM Studio 0.3.x does:
//   GET /api/v0/models          {"object":"list","data":[{"id","object":"model","type":"llm"|"vlm"|
//                               "embeddings","publisher","arch","compatibility_type","quantization",
//                               "state":"loaded"|"not-loaded","max_context_length"}]}
//   GET /api/v0/models/{id}     one of those entries
//   GET /v1/models              {"data":[{"id","object":"model","owned_by":"organization_owner"}],
//                               "object":"list"}: every downloaded model (JIT loading on)
//   POST /v1/chat/completions   (and /api/v0/chat/completions) OpenAI's shape, JSON or SSE
//                               ("data: {chunk}\n\n" ... "data: [DONE]\n\n"); a model it does not
//                               have: 404 {"error":{"message","type":"invalid_request_error",
//                               "param":"model","code":"model_not_found"}}
//   anything else               HTTP 200 {"error":"Unexpected endpoint or method. (GET /x)"}, as
//                               LM Studio really answers (so only shapes tell it apart)
// The answer is "Hello from LM Studio" in three pieces, with usage; state.models can be changed
// (a model loaded or unloaded) while it runs.
import http from 'node:http';
import { serve } from './serve.mjs';

// The models of LM Studio's own documentation, the 8B one loaded.
export const lmStudioModels = () => [
  { id: 'qwen2-vl-7b-instruct', object: 'model', type: 'vlm', publisher: 'mlx-community', arch: 'qwen2_vl', compatibility_type: 'mlx', quantization: '4bit', state: 'not-loaded', max_context_length: 32768 },
  { id: 'meta-llama-3.1-8b-instruct', object: 'model', type: 'llm', publisher: 'lmstudio-community', arch: 'llama', compatibility_type: 'gguf', quantization: 'Q4_K_M', state: 'loaded', max_context_length: 131072 },
  { id: 'text-embedding-nomic-embed-text-v1.5', object: 'model', type: 'embeddings', publisher: 'nomic-ai', arch: 'nomic-bert', compatibility_type: 'gguf', quantization: 'Q4_0', state: 'not-loaded', max_context_length: 2048 },
];

export async function startFakeLmStudio({ models = lmStudioModels() } = {}) {
  const state = { requests: [], sockets: new Set(), models };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', () => handle(req, res, raw));
  });

  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body, null, 2));
  };

  function handle(req, res, raw) {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/api/v0/models') return json(res, 200, { object: 'list', data: state.models });
    if (req.method === 'GET' && path.startsWith('/api/v0/models/')) {
      const id = decodeURIComponent(path.slice('/api/v0/models/'.length));
      const found = state.models.find((m) => m.id === id);
      if (found) return json(res, 200, found);
    }
    if (req.method === 'GET' && path === '/v1/models')
      return json(res, 200, { data: state.models.map((m) => ({ id: m.id, object: 'model', owned_by: 'organization_owner' })), object: 'list' });
    if (req.method === 'POST' && (path === '/v1/chat/completions' || path === '/api/v0/chat/completions')) return chat(res, raw);
    json(res, 200, { error: `Unexpected endpoint or method. (${req.method} ${path})` });
  }

  function chat(res, raw) {
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return json(res, 400, { error: "'messages' field is required" });
    }
    state.requests.push(body);
    const model = state.models.find((m) => m.id === body.model && (m.type === 'llm' || m.type === 'vlm'));
    if (!model) {
      const names = state.models.map((m) => m.id).join('\n');
      return json(res, 404, { error: { message: `Model "${body.model}" not found. Please specify a valid model.\n\nYour models:\n\n${names}`, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    }
    model.state = 'loaded'; // JIT loading
    const id = 'chatcmpl-lmstudio0fake0id';
    const created = 1731990317;
    const words = ['Hello', ' from', ' LM Studio'];
    const usage = { prompt_tokens: 12, completion_tokens: words.length, total_tokens: 12 + words.length };
    if (!body.stream) {
      return json(res, 200, {
        id, object: 'chat.completion', created, model: model.id,
        choices: [{ index: 0, logprobs: null, finish_reason: 'stop', message: { role: 'assistant', content: words.join('') } }],
        usage, stats: {}, system_fingerprint: model.id,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (choices, extra = {}) =>
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: model.id, system_fingerprint: model.id, choices, ...extra })}\n\n`);
    words.forEach((w, i) => send([{ index: 0, delta: i === 0 ? { role: 'assistant', content: w } : { content: w }, logprobs: null, finish_reason: null }]));
    send([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
    if (body.stream_options?.include_usage) send([], { usage });
    res.end('data: [DONE]\n\n');
  }

  const { port, close } = await serve(server, state);
  return { url: `http://127.0.0.1:${port}`, port, state, close };
}
