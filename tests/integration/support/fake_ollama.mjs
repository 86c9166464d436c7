// A fake Ollama speaking its native API. GET /api/version says {"version": ...}, GET /api/tags
// lists the pulled models (state.pulled), GET /api/ps the loaded ones (state.loaded), each with
// "context_length" (as newer Ollama releases do) when `contextLength` is given;
// POST /api/chat answers NDJSON lines (one JSON object per
// line, "done": false ... then a last line with "done": true, "done_reason", prompt_eval_count
// and eval_count) when "stream" is true or absent, one JSON object when it is false; errors are
// {"error": "..."} with an HTTP status. The model picks a behaviour:
//   any name    "Hello from ollama" in three pieces
//   "long"      stops with done_reason "length"
//   "tooluser"  calls get_weather({"city":"Paris"})
//   "missing"   404, as Ollama says for a model not pulled
//   "cut"       one line, half a line, then the socket is destroyed
//   "oom"       one line, then an {"error"} line mid-stream
// POST /api/pull {"model", "stream"} streams Ollama's progress lines ({"status": "pulling manifest"},
// {"status": "pulling <digest>", "digest", "total", "completed"} ..., "verifying sha256 digest",
// "writing manifest", {"status": "success"}) for a model in `pullable`, which is then pulled; any
// other model gets {"error": "pull model manifest: file does not exist"} (status 500), as Ollama
// answers for a name its registry lacks. Pulls are recorded in state.pulls.
// POST /api/embed {"model", "input": a string or a list of strings, "dimensions"?, "truncate"?}
// answers as Ollama's EmbedHandler does: {"model", "embeddings": [[...], ...], "total_duration",
// "load_duration" (nanoseconds), "prompt_eval_count"}, one vector per input, each
// ollamaEmbedding(text, dimensions) below (6 numbers, L2-normalized; "dimensions" below 6 keeps that
// many and normalizes again, as Ollama does). Any other input type (token ids) is 400 {"error":
// "invalid input type"}; an empty input is 200 with "embeddings": [] and no counts; model "missing"
// is 404 {"error": "model 'missing' not found"}. Embed requests are recorded in state.embeds (the
// parsed bodies), chat requests in state.requests.
import http from 'node:http';
import { serve } from './serve.mjs';

// The fake's embedding of `text`: `dims` (at most 6) numbers from an FNV-1a hash of the text,
// L2-normalized, with 7 significant digits (Go prints float32s that short).
export function ollamaEmbedding(text, dims = 6) {
  const raw = [];
  for (let d = 0; d < 6; d++) {
    let h = 0x811c9dc5 ^ Math.imul(d + 7, 0x85ebca6b);
    for (const ch of Buffer.from(text, 'utf8')) h = Math.imul(h ^ ch, 0x01000193);
    raw.push(((h >>> 0) % 20001) / 10000 - 1);
  }
  const kept = dims > 0 && dims < raw.length ? raw.slice(0, dims) : raw;
  const norm = Math.max(Math.hypot(...kept), 1e-12);
  return kept.map((x) => Number((x / norm).toPrecision(7)));
}

export async function startFakeOllama({ loaded = ['llama3.2:latest'], pulled = ['llama3.2:latest', 'qwen2.5:7b'], contextLength, pullable = [] } = {}) {
  const state = { requests: [], embeds: [], sockets: new Set(), loaded, pulled, pulls: [] };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/api/version') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return res.end(JSON.stringify({ version: '0.6.8' }));
      }
      if (req.method === 'GET' && req.url === '/api/tags') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return res.end(JSON.stringify({ models: state.pulled.map((name) => ({ name, model: name, modified_at: '2026-11-01T00:00:00Z', size: 1, digest: 'x' })) }));
      }
      if (req.method === 'GET' && req.url === '/api/ps') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return res.end(JSON.stringify({ models: state.loaded.map((name) => ({ name, model: name, size: 1, digest: 'x', expires_at: '2026-11-23T11:00:00Z', size_vram: 1,
          ...(contextLength !== undefined ? { context_length: contextLength } : {}) })) }));
      }
      if (req.method === 'POST' && req.url === '/api/pull') {
        const body = JSON.parse(raw);
        state.pulls.push({ model: body.model, stream: body.stream });
        if (!pullable.includes(body.model)) {
          res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          return res.end(JSON.stringify({ error: 'pull model manifest: file does not exist' }));
        }
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const digest = 'sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa';
        const total = 4683075271;
        const steps = [{ status: 'pulling manifest' }];
        for (let i = 1; i <= 10; i++) steps.push({ status: `pulling ${digest.slice(7, 19)}`, digest, total, completed: Math.round((total * i) / 10) });
        steps.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' });
        let i = 0;
        const next = () => {
          if (i === steps.length) {
            state.pulled.push(body.model);
            return res.end();
          }
          res.write(JSON.stringify(steps[i++]) + '\n');
          setTimeout(next, 120);
        };
        return next();
      }
      if (req.method === 'POST' && req.url === '/api/embed') return embed(res, raw);
      if (req.method !== 'POST' || req.url !== '/api/chat') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('404 page not found');
      }
      const body = JSON.parse(raw);
      state.requests.push(body);
      const model = body.model;
      const created_at = '2026-11-23T10:00:00.000000000Z';
      if (model === 'missing') {
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
        return res.end(JSON.stringify({ error: `model "${model}" not found, try pulling it first` }));
      }
      const line = (message, extra = {}) => JSON.stringify({ model, created_at, message: { role: 'assistant', content: '', ...message }, done: false, ...extra });
      const last = (reason) => JSON.stringify({
        model, created_at, message: { role: 'assistant', content: '' }, done: true, done_reason: reason,
        total_duration: 1000, load_duration: 10, prompt_eval_count: 11, prompt_eval_duration: 100, eval_count: 3, eval_duration: 500,
      });
      const pieces = model === 'tooluser' ? [] : ['Hello', ' from', ' ollama'];
      const toolCalls = model === 'tooluser' ? [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] : undefined;
      const reason = model === 'long' ? 'length' : 'stop';
      if (body.stream === false) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        const done = JSON.parse(last(reason));
        done.message = { role: 'assistant', content: pieces.join(''), ...(toolCalls ? { tool_calls: toolCalls } : {}) };
        return res.end(JSON.stringify(done));
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (model === 'cut') {
        res.write(line({ content: 'Hel' }) + '\n');
        res.write('{"model":"cut","created_at":"' + created_at + '","mess');
        return setTimeout(() => res.socket.destroy(), 20);
      }
      if (model === 'oom') {
        res.write(line({ content: 'Hel' }) + '\n');
        res.write(JSON.stringify({ error: 'an error was encountered while running the model: out of memory' }) + '\n');
        return res.end();
      }
      for (const p of pieces) res.write(line({ content: p }) + '\n');
      if (toolCalls) res.write(line({ tool_calls: toolCalls }) + '\n');
      res.end(last(reason) + '\n');
    });
  });
  // POST /api/embed, as Ollama's EmbedHandler answers it.
  function embed(res, raw) {
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    let body;
    try {
      body = JSON.parse(raw);
    } catch (e) {
      return json(400, { error: e.message });
    }
    state.embeds.push(body);
    let input;
    if (typeof body.input === 'string') input = body.input ? [body.input] : [];
    else if (Array.isArray(body.input)) {
      if (!body.input.every((x) => typeof x === 'string')) return json(400, { error: 'invalid input type' });
      input = body.input;
    } else if (body.input === undefined || body.input === null) input = [];
    else return json(400, { error: 'invalid input type' });
    if (body.model === 'missing') return json(404, { error: `model '${body.model}' not found` });
    if (!input.length) return json(200, { model: body.model, embeddings: [] });
    const tokens = input.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 3)), 0);
    json(200, {
      model: body.model,
      embeddings: input.map((t) => ollamaEmbedding(t, body.dimensions)),
      total_duration: 14143917, load_duration: 1019500, prompt_eval_count: tokens,
    });
  }

  const { port, close } = await serve(server, state);
  return { url: `http://127.0.0.1:${port}`, state, close };
}
