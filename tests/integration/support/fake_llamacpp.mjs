// A fake llama.cpp server: GET /health (200 {"status":"ok"}, or 503 {"error":{"code":503,
// "message":"Loading model","type":"unavailable_error"}} while state.loading), GET /props
// ({"default_generation_settings":{"n_ctx":...}}), GET /v1/models (also /models and /api/tags, one
// handler as in llama-server: OpenAI's "data" with "owned_by": "llamacpp" and "meta", beside an
// Ollama-style "models" list) naming the one model served (`alias`, else the model path), POST
// /v1/chat/completions in OpenAI's shape
// with llama.cpp's "timings" ({prompt_n, predicted_n, predicted_per_second}) and, like builds
// before usage reporting, no "usage". Model "error-mid" streams one chunk, then fails the way
// llama-server does mid-stream: an "error: {"code","message","type"}" line, and the stream ends.
import http from 'node:http';
import { serve } from './serve.mjs';

export async function startFakeLlamaCpp({ name = 'llama', nCtx = 64, alias } = {}) {
  const modelPath = '/models/x.gguf';
  const modelId = alias ?? modelPath;
  const state = { requests: [], loading: false, sockets: new Set() };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const json = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET' && req.url === '/health')
        return state.loading ? json(503, { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } }) : json(200, { status: 'ok' });
      if (req.method === 'GET' && req.url === '/props')
        return json(200, { default_generation_settings: { n_ctx: nCtx, temperature: 0.8 }, total_slots: 1, model_path: modelPath });
      if (req.method === 'GET' && (req.url === '/v1/models' || req.url === '/models' || req.url === '/api/tags'))
        return json(200, {
          models: [{
            name: modelId, model: modelId, modified_at: '', size: '', digest: '', type: 'model', description: '', tags: [''],
            capabilities: ['completion'], parameters: '',
            details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' },
          }],
          object: 'list',
          data: [{
            id: modelId, object: 'model', created: 1700000000, owned_by: 'llamacpp',
            meta: { vocab_type: 2, n_vocab: 151936, n_ctx_train: 32768, n_embd: 896, n_params: 494032768, size: 1 },
          }],
        });
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return json(404, { error: { code: 404, message: 'File Not Found', type: 'not_found_error' } });
      const body = JSON.parse(raw);
      state.requests.push(body);
      const timings = { prompt_n: 9, prompt_ms: 12.5, predicted_n: 4, predicted_ms: 80, predicted_per_second: 50.0 };
      const words = ['Hi', ' from', ' ', name];
      const base = { id: 'chatcmpl-llama', created: 1700000000, model: body.model, system_fingerprint: 'b1234' };
      if (!body.stream)
        return json(200, { ...base, object: 'chat.completion', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: words.join('') } }], timings });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (o) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      if (body.model === 'error-mid') {  // llama.cpp's own way to fail mid-stream: an "error:" line
        send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, finish_reason: null, delta: { content: 'Hi' } }] });
        return res.end(`error: ${JSON.stringify({ code: 500, message: 'llama_decode failed: out of KV cache', type: 'server_error' })}\n\n`);
      }
      for (const w of words) send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, finish_reason: null, delta: { content: w } }] });
      send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, finish_reason: 'stop', delta: {} }], timings });
      res.end('data: [DONE]\n\n');
    });
  });
  const { port, close } = await serve(server, state);
  return { url: `http://127.0.0.1:${port}`, state, close };
}
