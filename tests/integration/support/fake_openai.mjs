// A fake OpenAI-compatible backend (the shape llama.cpp server, vLLM and OpenAI itself speak):
// POST /v1/chat/completions answers JSON or SSE ("data: {chunk}\n\n" ... "data: [DONE]\n\n"),
// and errors as {"error":{...}} with a real HTTP status. GET /v1/models lists `models` in OpenAI's
// shape ({"object":"list","data":[{"id","object":"model","created","owned_by"}]}); any other path
// is a 404. The requested model (listed or not) picks a behaviour,
// so one fake serves every scenario:
//   any name      normal answer ("Hello from <name>"), usage when asked (include_usage)
//   "slow"        streams 20 chunks, 20 ms apart
//   "endless"     streams a chunk every 10 ms until the client goes away
//   "die-mid"     streams 2 chunks, then destroys the socket (no [DONE])
//   "fail-500"    HTTP 500 with an OpenAI error body
//   "bad-request" HTTP 400 with an OpenAI error body (the client's fault: not retried)
//   "hang"        accepts the request and never answers
//   "rate-limited" HTTP 429 with Retry-After: 30
//   "firehose"    streams 4 KiB chunks as fast as the socket takes them, until the client goes;
//                 state.firehoseBytes counts what was handed to the socket
//   "leaky"       answers with an e-mail address and a phone number, split across chunks
//   "cite"        answers from the sources the web plugin injected (the last system message with
//                 "[n] title" lines each followed by "URL: <url>"), citing them as real models do:
//                 citePieces(sources) below, one piece per chunk when streamed, joined when whole:
//                 "[1]" and "[2]" split across chunks, then a Markdown link to source 3's URL (the
//                 last source's when there are fewer). Without such a message: "No sources."
//   "tools"       tool calling as OpenAI does it. With `tools` in the request and a last message
//                 that is not role "tool": one call of the first tool (finish_reason "tool_calls",
//                 content null), id "call_<name>_<n>" (n counts the fake's calls, so each answer's
//                 is its own), arguments toolArguments(tool) below, e.g. {"city":"Paris"}; streamed
//                 as OpenAI streams it: a first chunk with delta.tool_calls[0] = {index: 0, id,
//                 type: "function", function: {name, arguments: ""}}, then chunks each with a piece
//                 of the arguments only ({index: 0, function: {arguments}}), then the
//                 finish_reason chunk and the usage chunk when asked. When the last message is
//                 role "tool": the text "The tool said: <its content>". Otherwise a normal answer.
// POST /v1/embeddings answers as OpenAI does: {"object":"list","data":[{"object":"embedding",
// "index","embedding"}],"model","usage":{"prompt_tokens","total_tokens"}}, one item per input in
// order (input: a string, a list of strings, token ids or lists of token ids; anything else is
// OpenAI's 400 "'$.input' is invalid"). Each vector is fakeEmbedding(text, dimensions ?? 8) below
// (token ids are embedded as the text JSON.stringify(ids)), a unit vector of numbers printed with
// 8 significant digits as OpenAI prints float32s; usage counts ceil(chars / 4) (at least 1) per
// text and one per token id. encoding_format "base64" answers each embedding as the base64 of its
// little-endian float32s (fakeEmbeddingBase64), as OpenAI does; "float" or none, numbers; any
// other value is a 400. Model "fail-500" (or state.failing) answers 500 and "bad-request" 400, as
// for chat. Embeddings requests are recorded in state.requests too, with path "/v1/embeddings"
// (chat's with path "/v1/chat/completions").
// Setting state.failing makes every chat and embeddings request a 500, whatever the model (a
// backend that breaks and later heals). Like OpenAI's, every answer has an id of its own: "chatcmpl-<X-Request-Id>" when the request
// carries one (plexus forwards its request id upstream), else "chatcmpl-fake". So a suite can
// tell whose answer a chunk belongs to.
import http from 'node:http';

// The sources the web plugin injected into `messages`: [{n, title, url}] from the last system
// message that lists any ("[n] title" then "URL: <url>"), else [].
export function injectedSources(messages) {
  if (!Array.isArray(messages)) return [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'system' || typeof m.content !== 'string') continue;
    const sources = [...m.content.matchAll(/^\[(\d+)\] (.*)\nURL: (\S+)/gm)].map((x) => ({ n: Number(x[1]), title: x[2], url: x[3] }));
    if (sources.length) return sources;
  }
  return [];
}

// What the "cite" model answers, piece by piece (a streamed chunk each).
export function citePieces(sources) {
  if (!sources.length) return ['No sources.'];
  const link = (sources[2] ?? sources.at(-1)).url;
  return ['Plexus routes requests ', '[', '1] and streams ', 'ünïcode answers [2', ']. See ', '[the docs](', link, ').'];
}

// The arguments the "tools" model calls `tool` (a chat tools[] entry) with: every required string
// property of its parameters set to "Paris"; {"city":"Paris"} when it requires no string.
export function toolArguments(tool) {
  const params = tool?.function?.parameters ?? {};
  const props = params.properties ?? {};
  const args = {};
  for (const key of Array.isArray(params.required) ? params.required : [])
    if (props[key]?.type === 'string') args[key] = 'Paris';
  return JSON.stringify(Object.keys(args).length ? args : { city: 'Paris' });
}

// The fake's embedding of `text`: `dims` numbers from an FNV-1a hash of the text and the index,
// scaled to a unit vector, each rounded to 8 significant digits (what OpenAI's JSON carries).
export function fakeEmbedding(text, dims = 8) {
  const raw = [];
  for (let d = 0; d < dims; d++) {
    let h = 0x811c9dc5 ^ Math.imul(d + 1, 0x9e3779b1);
    for (const ch of Buffer.from(String(text), 'utf8')) h = Math.imul(h ^ ch, 0x01000193);
    raw.push(((h >>> 0) % 20001) / 10000 - 1);
  }
  const norm = Math.hypot(...raw) || 1;
  return raw.map((x) => Number((x / norm).toPrecision(8)));
}

// An embedding as OpenAI's base64: its float32s, little-endian, in standard base64.
export function fakeEmbeddingBase64(floats) {
  const buf = Buffer.alloc(floats.length * 4);
  floats.forEach((f, i) => buf.writeFloatLE(f, i * 4));
  return buf.toString('base64');
}

const isTokenIds = (x) => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t) && t >= 0);

// An embeddings request's inputs as [{text, tokens}], or null when OpenAI would refuse the shape.
function embeddingInputs(input) {
  const one = (x) => typeof x === 'string' && x.length ? { text: x, tokens: Math.max(1, Math.ceil(x.length / 4)) }
    : isTokenIds(x) ? { text: JSON.stringify(x), tokens: x.length } : null;
  if (typeof input === 'string' || isTokenIds(input)) {
    const item = one(input);
    return item ? [item] : null;
  }
  if (!Array.isArray(input) || input.length === 0 || input.length > 2048) return null;
  const items = input.map(one);
  return items.every(Boolean) ? items : null;
}

// The text of a message's content: a string, or its text parts joined.
const textOf = (content) => typeof content === 'string' ? content
  : Array.isArray(content) ? content.map((p) => p?.text ?? '').join('') : '';

export async function startFakeOpenAI({ name = 'fake', models = ['gpt-4o-mini'] } = {}) {
  const state = { requests: [], closedEarly: 0, active: 0, sockets: new Set(), toolCalls: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => handle(req, res, body));
  });
  server.on('connection', (s) => {
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });

  function handle(req, res, raw) {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model', created: 1721172741, owned_by: 'system' })) }));
    }
    if (req.method === 'POST' && req.url === '/v1/embeddings') return embeddings(req, res, raw);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }));
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'bad json', type: 'invalid_request_error', param: null, code: null } }));
    }
    state.requests.push({ path: req.url, headers: req.headers, body });
    const model = body.model;
    const given = req.headers['x-request-id'];
    const id = given ? `chatcmpl-${given}` : 'chatcmpl-fake';
    const created = 1700000000;
    const chunk = (delta, finish = null) =>
      JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });

    if (model === 'fail-500' || state.failing) {
      res.writeHead(500, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: `${name} is broken`, type: 'server_error', param: null, code: null } }));
    }
    if (model === 'bad-request') {
      res.writeHead(400, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: 'This model\'s maximum context length is 8 tokens', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } }));
    }
    if (model === 'hang') return; // never answers
    if (model === 'rate-limited') {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
      return res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
    }

    const last = Array.isArray(body.messages) ? body.messages.at(-1) : undefined;
    if (model === 'tools' && Array.isArray(body.tools) && body.tools.length && last?.role !== 'tool')
      return toolCall(res, body, id, created, chunk);
    const words = model === 'leaky'
      ? ['Mail jo', 'hn.doe@exam', 'ple.com or call 555-', '123-4567 today.']
      : model === 'cite' ? citePieces(injectedSources(body.messages))
      : model === 'tools' && last?.role === 'tool' ? ['The tool', ' said: ', textOf(last.content)]
      : ['Hello', ' from', ` ${name}`];
    const usage = { prompt_tokens: 7, completion_tokens: words.length, total_tokens: 7 + words.length };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: words.join('') }, logprobs: null, finish_reason: 'stop' }],
        usage, x_backend_extra: 'kept',
      }));
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    state.active++;
    let finished = false;
    res.on('close', () => {
      state.active--;
      if (!finished) state.closedEarly++;
    });
    const send = (s) => res.write(`data: ${s}\n\n`);
    const end = () => {
      send(chunk({}, 'stop'));
      if (body.stream_options?.include_usage) send(JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }));
      res.write('data: [DONE]\n\n');
      finished = true;
      res.end();
    };
    send(chunk({ role: 'assistant', content: '' }));

    if (model === 'slow' || model === 'endless') {
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        if (model === 'slow' && i === 20) {
          clearInterval(timer);
          return end();
        }
        send(chunk({ content: `${i++} ` }));
      }, model === 'slow' ? 20 : 10);
      return;
    }
    if (model === 'firehose') {
      state.firehoseBytes = 0;
      const piece = `data: ${chunk({ content: 'x'.repeat(4000) })}\n\n`;
      const pump = () => {
        while (!res.destroyed) {
          state.firehoseBytes += piece.length;
          if (!res.write(piece)) return res.once('drain', pump);
        }
      };
      return pump();
    }
    if (model === 'die-mid') {
      send(chunk({ content: 'partial' }));
      setTimeout(() => res.socket.destroy(), 20);
      return;
    }
    for (const w of words) send(chunk({ content: w }));
    end();
  }

  // POST /v1/embeddings, as OpenAI answers it.
  function embeddings(req, res, raw) {
    const error = (status, message, type = 'invalid_request_error', param = null, code = null) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message, type, param, code } }));
    };
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return error(400, 'We could not parse the JSON body of your request.');
    }
    state.requests.push({ path: req.url, headers: req.headers, body });
    const model = body.model;
    if (model === 'fail-500' || state.failing) return error(500, `${name} is broken`, 'server_error');
    if (model === 'bad-request') return error(400, 'This model\'s maximum context length is 8 tokens', 'invalid_request_error', 'input', 'context_length_exceeded');
    if (typeof model !== 'string' || !model) return error(400, 'you must provide a model parameter');
    const inputs = embeddingInputs(body.input);
    if (!inputs) return error(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') return error(400, `'${format}' is not one of ['float', 'base64'] - 'encoding_format'`);
    if (body.dimensions !== undefined && !(Number.isInteger(body.dimensions) && body.dimensions > 0))
      return error(400, 'Invalid value for dimensions: must be a positive integer.', 'invalid_request_error', 'dimensions');
    const dims = body.dimensions ?? 8;
    const data = inputs.map(({ text }, index) => {
      const floats = fakeEmbedding(text, dims);
      return { object: 'embedding', index, embedding: format === 'base64' ? fakeEmbeddingBase64(floats) : floats };
    });
    const tokens = inputs.reduce((n, i) => n + i.tokens, 0);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } }));
  }

  // The "tools" model's answer: one call of the first tool, whole or streamed.
  function toolCall(res, body, id, created, chunk) {
    const tool = body.tools[0];
    const call = { id: `call_${name}_${++state.toolCalls}`, name: tool?.function?.name ?? '', arguments: toolArguments(tool) };
    const pieces = call.arguments.match(/.{1,5}/gs);
    const usage = { prompt_tokens: 11, completion_tokens: pieces.length, total_tokens: 11 + pieces.length };
    const model = body.model;
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null,
                                         tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] },
                    logprobs: null, finish_reason: 'tool_calls' }],
        usage,
      }));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (s) => res.write(`data: ${s}\n\n`);
    send(chunk({ role: 'assistant', content: null, refusal: null,
                 tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
    for (const piece of pieces) send(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
    send(chunk({}, 'tool_calls'));
    if (body.stream_options?.include_usage) send(JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage }));
    res.write('data: [DONE]\n\n');
    res.end();
  }

  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    state,
    async close() {
      for (const s of state.sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
