// A fake vLLM OpenAI-compatible server (`vllm serve`, default port 8000), as vLLM 0.6.x answers:
//   GET /version               {"version":"0.6.3"}
//   GET /health                200, empty body
//   GET /v1/models             {"object":"list","data":[ModelCard]}: the served model ("owned_by":
//                              "vllm", "root" its path, "parent": null, "max_model_len",
//                              "permission": [ModelPermission]) and each LoRA adapter ("root" the
//                              adapter's path, "parent" the base model, "max_model_len": null)
//   POST /v1/chat/completions  OpenAI's shape with vLLM's extras ("stop_reason", "prompt_logprobs"),
//                              JSON or SSE ("data: {chunk}\n\n" ... "data: [DONE]\n\n"; with
//                              stream_options.include_usage a last chunk with "choices": [] and
//                              usage); a model it does not serve: 404 {"object":"error","message":
//                              "The model `x` does not exist.","type":"NotFoundError","param":null,
//                              "code":404}
//   anything else              FastAPI's 404 {"detail":"Not Found"}
// The answer is "Hello from vLLM" in three pieces. A "stop" string (or list) found in it ends the
// answer where it begins, as vLLM does: the text leaves it out, finish_reason is "stop", and
// "stop_reason" names the string (null when the answer ended by itself).
import http from 'node:http';
import { serve } from './serve.mjs';

export async function startFakeVllm({ model = 'meta-llama/Llama-3.1-8B-Instruct', maxModelLen = 8192, loras = [] } = {}) {
  const state = { requests: [], sockets: new Set() };
  const created = 1729000000;
  const permission = () => [{
    id: 'modelperm-8f3ad1bb0c5e4c2a9d0e7b6a5c4d3e2f', object: 'model_permission', created, allow_create_engine: false,
    allow_sampling: true, allow_logprobs: true, allow_search_indices: false, allow_view: true, allow_fine_tuning: false,
    organization: '*', group: null, is_blocking: false,
  }];
  const cards = () => [
    { id: model, object: 'model', created, owned_by: 'vllm', root: model, parent: null, max_model_len: maxModelLen, permission: permission() },
    ...loras.map((name) => ({ id: name, object: 'model', created, owned_by: 'vllm', root: `/adapters/${name}`, parent: model, max_model_len: null, permission: permission() })),
  ];

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', () => handle(req, res, raw));
  });
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  function handle(req, res, raw) {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/version') return json(res, 200, { version: '0.6.3' });
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200, { 'content-length': '0' });
      return res.end();
    }
    if (req.method === 'GET' && path === '/v1/models') return json(res, 200, { object: 'list', data: cards() });
    if (req.method === 'POST' && path === '/v1/chat/completions') return chat(res, raw);
    json(res, 404, { detail: 'Not Found' });
  }

  function chat(res, raw) {
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return json(res, 400, { object: 'error', message: 'Expecting value: line 1 column 1 (char 0)', type: 'BadRequestError', param: null, code: 400 });
    }
    state.requests.push(body);
    if (!cards().some((c) => c.id === body.model))
      return json(res, 404, { object: 'error', message: `The model \`${body.model}\` does not exist.`, type: 'NotFoundError', param: null, code: 404 });
    const id = 'chatcmpl-5d3c0e8a4b2f4f0e9a1b2c3d4e5f6a7b';
    let words = ['Hello', ' from', ' vLLM'];
    let stopReason = null;
    const stops = body.stop == null ? [] : [].concat(body.stop);
    const text = words.join('');
    const hits = stops.map((stop) => ({ stop, at: text.indexOf(stop) })).filter((h) => h.at >= 0).sort((a, b) => a.at - b.at);
    if (hits.length) {
      stopReason = hits[0].stop;
      let left = hits[0].at;
      words = words.map((w) => {
        const piece = w.slice(0, Math.max(0, left));
        left -= w.length;
        return piece;
      }).filter(Boolean);
    }
    const usage = { prompt_tokens: 10, total_tokens: 10 + words.length, completion_tokens: words.length, prompt_tokens_details: null };
    if (!body.stream) {
      return json(res, 200, {
        id, object: 'chat.completion', created, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: words.join(''), tool_calls: [] }, logprobs: null, finish_reason: 'stop', stop_reason: stopReason }],
        usage, prompt_logprobs: null,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const send = (choices, extra = {}) =>
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices, ...extra })}\n\n`);
    send([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    for (const w of words) send([{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }]);
    send([{ index: 0, delta: { content: '' }, logprobs: null, finish_reason: 'stop', stop_reason: stopReason }]);
    if (body.stream_options?.include_usage) send([], { usage });
    res.end('data: [DONE]\n\n');
  }

  const { port, close } = await serve(server, state);
  return { url: `http://127.0.0.1:${port}`, port, state, close };
}
