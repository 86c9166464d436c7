// A fake Anthropic Messages API: POST /v1/messages with x-api-key and anthropic-version (401 /
// 400 otherwise), answering a "message" object, or with "stream": true the documented SSE
// sequence: message_start, content_block_start, ping, content_block_delta (text_delta or
// input_json_delta), content_block_stop, message_delta (stop_reason, usage), message_stop.
// Errors are {"type":"error","error":{"type","message"}}. The model picks a behaviour:
//   any name           "Hello from claude" (input 25 tokens, output 3)
//   "claude-tools"     a tool_use block calling get_weather({"city":"Paris"}), streamed in parts
//   "overloaded"       HTTP 529 overloaded_error
//   "midstream-error"  some text, then an error event
//   "limited"          stop_reason max_tokens
//   "truncated"        some text, then the stream ends without message_stop
// A stop_sequences entry found in the text ends it where it begins: stop_reason "stop_sequence",
// stop_sequence that entry, the text without it.
import http from 'node:http';
import { serve } from './serve.mjs';

export async function startFakeAnthropic({ key = 'sk-ant-test' } = {}) {
  const state = { requests: [], sockets: new Set() };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const fail = (status, type, message) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type, message } }));
      };
      if (req.method !== 'POST' || req.url !== '/v1/messages') return fail(404, 'not_found_error', 'Not found');
      if (req.headers['x-api-key'] !== key) return fail(401, 'authentication_error', 'invalid x-api-key');
      if (!req.headers['anthropic-version']) return fail(400, 'invalid_request_error', 'anthropic-version header is required');
      const body = JSON.parse(raw);
      state.requests.push({ headers: req.headers, body });
      if (typeof body.max_tokens !== 'number') return fail(400, 'invalid_request_error', 'max_tokens: Field required');
      const model = body.model;
      if (model === 'overloaded') return fail(529, 'overloaded_error', 'Overloaded');
      const usage = { input_tokens: 25, output_tokens: 3 };
      const tools = model === 'claude-tools';
      let stop = tools ? 'tool_use' : model === 'limited' ? 'max_tokens' : 'end_turn';
      let text = tools ? ['Let me', ' check.'] : ['Hello', ' from', ' claude'];
      let stopSequence = null;
      const hits = (body.stop_sequences ?? []).map((s) => ({ s, at: text.join('').indexOf(s) })).filter((h) => h.at >= 0);
      if (!tools && hits.length) {
        hits.sort((a, b) => a.at - b.at);
        stop = 'stop_sequence';
        stopSequence = hits[0].s;
        let left = hits[0].at;
        text = text.map((t) => { const piece = t.slice(0, Math.max(0, left)); left -= t.length; return piece; }).filter(Boolean);
      }
      const content = tools
        ? [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } }]
        : [{ type: 'text', text: text.join('') }];
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ id: 'msg_01', type: 'message', role: 'assistant', model, content, stop_reason: stop, stop_sequence: stopSequence, usage }));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('message_start', { type: 'message_start', message: { id: 'msg_01', type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, output_tokens: 1 } } });
      send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      send('ping', { type: 'ping' });
      for (const t of text) send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } });
      if (model === 'truncated') return res.end();
      if (model === 'midstream-error') {
        send('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
        return res.end();
      }
      send('content_block_stop', { type: 'content_block_stop', index: 0 });
      if (tools) {
        send('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} } });
        for (const part of ['{"city"', ': "Par', 'is"}']) send('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: part } });
        send('content_block_stop', { type: 'content_block_stop', index: 1 });
      }
      send('message_delta', { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: stopSequence }, usage: { output_tokens: 3 } });
      send('message_stop', { type: 'message_stop' });
      res.end();
    });
  });
  const { port, close } = await serve(server, state);
  return { url: `http://127.0.0.1:${port}`, state, close };
}
