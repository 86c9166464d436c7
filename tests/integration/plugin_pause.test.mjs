// Plugin API 2 against the running router: a hook that pauses its request and finishes it later
// (resume, reject, respond, or never, bounded by max_pause_ms), the host's HTTP client and worker
// pool lent to plugins, cancellation when the client leaves during a pause, and config schemas
// declared by native and Lua plugins. The fixture is tests/plugins/pauser.cpp.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, plexusBin, repoRoot, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const pauserLib = path.join(pluginDir, 'libplexus_test_pauser.so');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-pause-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const script = (name, source) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  return file;
};
const content = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e)).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (fn, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await fn()) && Date.now() < end) await sleep(20);
  return fn();
};
const MODELS = ['gpt-x'];

// A router in front of one fake upstream with the pauser as its only plugin.
async function pauserRouter(config, { on_error, max_pause_ms, extra = {} } = {}) {
  const fake = await startFakeOpenAI({ name: 'up' });
  const plugin = { name: 'pauser', type: 'native', path: pauserLib, config };
  if (on_error) plugin.on_error = on_error;
  if (max_pause_ms !== undefined) plugin.max_pause_ms = max_pause_ms;
  const plexus = await startPlexus(baseConfig([{ name: 'up', provider: 'openai', url: fake.url, models: MODELS }], { plugins: [plugin], ...extra }));
  return {
    fake,
    plexus,
    async close() {
      await plexus.stop();
      await fake.close();
    },
  };
}

// Sends one request whole or streamed and reads it to the end.
async function ask(url, { stream = false, text = 'hi', signal, headers } = {}) {
  const res = await chat(url, { model: 'gpt-x', messages: user(text), stream }, { signal, headers });
  const raw = await res.text();
  return { res, raw, status: res.status, headers: res.headers };
}
const sent = (fake, text) => fake.state.requests.filter((r) => r.body.messages?.[0]?.content === text);

describe('then: resume', () => {
  let r;
  before(async () => (r = await pauserRouter({ delay_ms: 50, then: 'resume' })));
  after(async () => r?.close());

  for (const stream of [false, true]) {
    test(`the upstream sees the rewritten request and header (${stream ? 'streamed' : 'whole'})`, async () => {
      const text = `resume-${stream}`;
      const res = await chat(r.plexus.url, { model: 'gpt-x', messages: user(text), temperature: 1.5, stream }, {});
      assert.equal(res.status, 200);
      assert.ok(res.headers.get('x-pauser-loop'), 'a response header set while pausing');
      assert.equal(res.headers.get('x-pauser-cancelled'), '0');
      if (stream) {
        const events = await sseEvents(res);
        assert.equal(events.at(-1), '[DONE]');
        assert.equal(content(events), 'Hello from up');
      } else {
        assert.equal((await res.json()).choices[0].message.content, 'Hello from up');
      }
      const seen = sent(r.fake, text);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].body.temperature, 0.25);
      assert.equal(seen[0].headers['x-pauser'], 'resumed');
      assert.equal(seen[0].body.stream, stream);
    });
  }
});

describe('then: reject and respond', () => {
  let rejecter, responder;
  before(async () => {
    rejecter = await pauserRouter({ delay_ms: 30, then: 'reject' });
    responder = await pauserRouter({ delay_ms: 30, then: 'respond' });
  });
  after(async () => {
    await rejecter?.close();
    await responder?.close();
  });

  for (const stream of [false, true]) {
    test(`reject: 402 with an OpenAI error body, no upstream call (${stream ? 'streamed' : 'whole'})`, async () => {
      const { status, raw, headers } = await ask(rejecter.plexus.url, { stream });
      assert.equal(status, 402);
      assert.match(headers.get('content-type'), /application\/json/);
      assert.deepEqual(JSON.parse(raw).error, { message: 'the pauser says no', type: 'invalid_request_error', param: null, code: 'pauser_no' });
      assert.equal(rejecter.fake.state.requests.length, 0);
    });
  }

  test('respond: the canned answer, whole', async () => {
    const { status, raw, headers } = await ask(responder.plexus.url);
    assert.equal(status, 200);
    assert.ok(headers.get('x-pauser-loop'));
    const body = JSON.parse(raw);
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.choices[0].message.content, 'Answered after a pause.');
    assert.equal(body.choices[0].finish_reason, 'stop');
    assert.equal(responder.fake.state.requests.length, 0);
  });

  test('respond: the canned answer as a stream ending with [DONE]', async () => {
    const res = await chat(responder.plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const events = await sseEvents(res);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(content(events), 'Answered after a pause.');
    for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e).object, 'chat.completion.chunk');
    assert.equal(responder.fake.state.requests.length, 0);
  });
});

describe('then: never, bounded by max_pause_ms', () => {
  let open, closed;
  before(async () => {
    open = await pauserRouter({ then: 'never' }, { on_error: 'open', max_pause_ms: 300 });
    closed = await pauserRouter({ then: 'never' }, { on_error: 'closed', max_pause_ms: 300 });
  });
  after(async () => {
    await open?.close();
    await closed?.close();
  });

  for (const stream of [false, true]) {
    test(`on_error open: served by the upstream after the pause (${stream ? 'streamed' : 'whole'})`, async () => {
      const text = `never-open-${stream}`;
      const started = Date.now();
      const { status, raw } = await ask(open.plexus.url, { stream, text });
      const took = Date.now() - started;
      assert.equal(status, 200, raw);
      assert.ok(took >= 250, `waited out the pause (${took} ms)`);
      assert.ok(took < 10000, `but not much longer (${took} ms)`);
      if (stream) assert.match(raw, /data: \[DONE\]\n\n$/);
      else assert.equal(JSON.parse(raw).choices[0].message.content, 'Hello from up');
      const seen = sent(open.fake, text);
      assert.equal(seen.length, 1, 'the upstream got the request');
      assert.equal(seen[0].headers['x-pauser'], undefined, 'the plugin never resumed it');
      assert.notEqual(seen[0].body.temperature, 0.25);
    });
  }

  for (const stream of [false, true]) {
    test(`on_error closed: 504 plugin_timeout (${stream ? 'streamed' : 'whole'})`, async () => {
      const started = Date.now();
      const { status, raw } = await ask(closed.plexus.url, { stream });
      const took = Date.now() - started;
      assert.equal(status, 504, raw);
      const error = JSON.parse(raw).error;
      assert.equal(error.code, 'plugin_timeout');
      assert.match(error.message, /pauser/);
      assert.ok(took >= 250, `waited out the pause (${took} ms)`);
      assert.equal(closed.fake.state.requests.length, 0);
    });
  }

  test('the timeouts are logged naming the plugin', async () => {
    assert.ok(await waitFor(() => /\[plugin:pauser\] kept request \S+ paused longer than 300 ms/.test(closed.plexus.stderr())));
    assert.match(open.plexus.stderr(), /\[plugin:pauser\] kept request \S+ paused longer than 300 ms/);
  });
});

describe('the host HTTP client (fetch)', () => {
  let site, hits = 0, ok, refused;
  const page = 'x'.repeat(1234);
  before(async () => {
    site = http.createServer((req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(page);
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    // A port nothing listens on: bound, then closed.
    const gone = http.createServer();
    await new Promise((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const closedPort = gone.address().port;
    await new Promise((resolve) => gone.close(resolve));
    ok = await pauserRouter({ delay_ms: 10, fetch: `http://127.0.0.1:${site.address().port}/page` });
    refused = await pauserRouter({ delay_ms: 10, fetch: `http://127.0.0.1:${closedPort}/page` });
  });
  after(async () => {
    await ok?.close();
    await refused?.close();
    if (site) {
      site.closeAllConnections();
      await new Promise((resolve) => site.close(resolve));
    }
  });

  for (const stream of [false, true]) {
    test(`a fetch before resuming: its status and size in x-pauser-fetch (${stream ? 'streamed' : 'whole'})`, async () => {
      const before = hits;
      const { status, headers, raw } = await ask(ok.plexus.url, { stream });
      assert.equal(status, 200, raw);
      assert.equal(headers.get('x-pauser-fetch'), '200 1234');
      assert.equal(hits, before + 1, 'the local server was fetched once');
      assert.equal(ok.fake.state.requests.at(-1).headers['x-pauser'], 'resumed');
    });

    test(`a fetch to a closed port: "failed", and the request still completes (${stream ? 'streamed' : 'whole'})`, async () => {
      const { status, headers, raw } = await ask(refused.plexus.url, { stream });
      assert.equal(status, 200, raw);
      assert.equal(headers.get('x-pauser-fetch'), 'failed');
      if (stream) assert.match(raw, /data: \[DONE\]\n\n$/);
      else assert.equal(JSON.parse(raw).choices[0].message.content, 'Hello from up');
    });
  }
});

describe('the worker pool (work_ms)', () => {
  let r, tight;
  before(async () => {
    r = await pauserRouter({ delay_ms: 0, work_ms: 200 });
    tight = await pauserRouter({ delay_ms: 0, work_ms: 1500 }, { extra: { workers: { threads: 1, queue_limit: 1 } } });
  });
  after(async () => {
    await r?.close();
    await tight?.close();
  });

  test('the work runs on a worker thread, not the loop', async () => {
    for (const stream of [false, true]) {
      const { status, headers, raw } = await ask(r.plexus.url, { stream });
      assert.equal(status, 200, raw);
      const worker = headers.get('x-pauser-worker');
      const loop = headers.get('x-pauser-loop');
      assert.ok(worker, 'x-pauser-worker is set');
      assert.ok(loop, 'x-pauser-loop is set');
      assert.notEqual(worker, loop);
    }
  });

  test('4 concurrent requests with work all succeed, each with a worker id', async () => {
    const results = await Promise.all([0, 1, 2, 3].map((i) => ask(r.plexus.url, { stream: i % 2 === 1, text: `work-${i}` })));
    for (const [i, { status, headers, raw }] of results.entries()) {
      assert.equal(status, 200, raw);
      assert.ok(headers.get('x-pauser-worker'), `request ${i} has a worker id`);
      assert.notEqual(headers.get('x-pauser-worker'), headers.get('x-pauser-loop'));
      assert.equal(sent(r.fake, `work-${i}`).length, 1);
    }
  });

  test('a full queue refuses the extra work with 503 workers_busy; the rest is served', async () => {
    // One worker, one queued job: of 6 requests sent at once, at most a few fit.
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ask(tight.plexus.url, { text: `tight-${i}` })));
    const ok = results.filter((x) => x.status === 200);
    const busy = results.filter((x) => x.status === 503);
    assert.equal(ok.length + busy.length, 6, results.map((x) => `${x.status} ${x.raw}`).join('\n'));
    assert.ok(ok.length >= 1, 'the first job is served');
    assert.ok(busy.length >= 1, 'a job beyond the queue is refused');
    for (const b of busy) assert.equal(JSON.parse(b.raw).error.code, 'workers_busy');
    for (const o of ok) assert.ok(o.headers.get('x-pauser-worker'));
    assert.equal(tight.fake.state.requests.length, ok.length, 'refused requests never reach the upstream');
  });
});

describe('a client that leaves during a pause', () => {
  let r;
  before(async () => (r = await pauserRouter({ delay_ms: 2000 })));
  after(async () => r?.close());

  test('cancels the pause (on_cancel runs); the router keeps serving', { timeout: 60000 }, async () => {
    // A request in flight while the others are aborted: its count is from before them.
    const first = ask(r.plexus.url, { text: 'baseline' });
    await sleep(50);
    const aborted = [];
    for (const stream of [false, true]) {
      const controller = new AbortController();
      const pending = chat(r.plexus.url, { model: 'gpt-x', messages: user(`abort-${stream}`), stream }, { signal: controller.signal });
      aborted.push(pending.then(() => 'answered', (e) => e.name));
      setTimeout(() => controller.abort(), 200);
    }
    assert.deepEqual(await Promise.all(aborted), ['AbortError', 'AbortError']);
    const base = await first;
    assert.equal(base.status, 200);
    const before = Number(base.headers.get('x-pauser-cancelled'));
    // Each request pauses 2 s: a few tries are plenty for the cancellations to be counted.
    let after = before;
    for (let i = 0; i < 5 && after < before + 2; i++) {
      const next = await ask(r.plexus.url, { stream: i % 2 === 1, text: `after-${i}` });
      assert.equal(next.status, 200, next.raw);
      after = Number(next.headers.get('x-pauser-cancelled'));
    }
    assert.ok(after >= before + 2, `x-pauser-cancelled went from ${before} to ${after}`);
    assert.ok(await waitFor(() => (r.plexus.stderr().match(/status=499 .*error=client_closed/g) ?? []).length === 2), r.plexus.stderr());
    assert.equal(sent(r.fake, 'abort-false').length + sent(r.fake, 'abort-true').length, 0, 'the aborted requests never reached the upstream');
  });
});

describe('a client that leaves while the plugin waits on a transfer or a worker', () => {
  let hang, opened = 0, closedSockets = 0, fetcher, worker;
  before(async () => {
    // Accepts the plugin's GET and never answers: only an abort ends that transfer.
    hang = http.createServer(() => {});
    hang.on('connection', (s) => {
      opened++;
      s.on('close', () => closedSockets++);
    });
    await new Promise((resolve) => hang.listen(0, '127.0.0.1', resolve));
    fetcher = await pauserRouter({ delay_ms: 0, fetch: `http://127.0.0.1:${hang.address().port}/slow` });
    worker = await pauserRouter({ delay_ms: 0, work_ms: 1000 });
  });
  after(async () => {
    await fetcher?.close();
    await worker?.close();
    if (hang) {
      hang.closeAllConnections();
      await new Promise((resolve) => hang.close(resolve));
    }
  });
  // Sends a request and leaves once `ready` holds (at least 200 ms in).
  const leaves = async (url, text, ready = () => true) => {
    const controller = new AbortController();
    const pending = chat(url, { model: 'gpt-x', messages: user(text) }, { signal: controller.signal });
    pending.catch(() => {});
    await sleep(200);
    assert.ok(await waitFor(ready), 'the plugin is waiting');
    controller.abort();
    await assert.rejects(pending, { name: 'AbortError' });
  };

  test('on_cancel aborts the plugin\'s HTTP transfer', async () => {
    // The plugin's GET is under way, its connection open, when the client leaves.
    await leaves(fetcher.plexus.url, 'leaves-fetch', () => opened === 1 && closedSockets === 0);
    assert.ok(await waitFor(() => closedSockets === 1), 'the router closed the transfer\'s connection');
    assert.ok(await waitFor(() => /status=499 .*error=client_closed/.test(fetcher.plexus.stderr())), fetcher.plexus.stderr());
    assert.equal(fetcher.fake.state.requests.length, 0);
  });

  test('a job on the worker pool finishes unseen; the router keeps serving', { timeout: 30000 }, async () => {
    await leaves(worker.plexus.url, 'leaves-work');
    assert.ok(await waitFor(() => /status=499 .*error=client_closed/.test(worker.plexus.stderr())), worker.plexus.stderr());
    const next = await ask(worker.plexus.url, { text: 'after-work', stream: true });
    assert.equal(next.status, 200, next.raw);
    assert.match(next.raw, /data: \[DONE\]\n\n$/);
    assert.ok(next.headers.get('x-pauser-worker'));
    assert.equal(Number(next.headers.get('x-pauser-cancelled')), 1, 'on_cancel ran once for the request that left');
    assert.equal(sent(worker.fake, 'leaves-work').length, 0, 'the request that left never reached the upstream');
  });
});

describe('a pause in the middle of a pipeline', () => {
  let fake, chained, timedOut;
  before(async () => {
    fake = await startFakeOpenAI({ name: 'up' });
    const after = script('after.lua', `
      function on_request(req, ctx)
        ctx:set_response_header("x-after-temperature", tostring(req.temperature))
        ctx:set_upstream_header("x-after", "ran")
      end`);
    const upstreams = [{ name: 'up', provider: 'openai', url: fake.url, models: MODELS }];
    chained = await startPlexus(baseConfig(upstreams, { plugins: [
      { name: 'first', type: 'native', path: pauserLib, config: { delay_ms: 30 } },
      { name: 'second', type: 'native', path: pauserLib, config: { delay_ms: 30, work_ms: 50 } },
      { name: 'after', type: 'lua', path: after },
    ] }));
    timedOut = await startPlexus(baseConfig(upstreams, { plugins: [
      { name: 'stuck', type: 'native', path: pauserLib, config: { then: 'never' }, max_pause_ms: 200 },
      { name: 'after', type: 'lua', path: after },
    ] }));
  });
  after(async () => {
    await chained?.stop();
    await timedOut?.stop();
    await fake?.close();
  });

  for (const stream of [false, true]) {
    test(`two pauses in a row, then a Lua plugin that sees the rewrite (${stream ? 'streamed' : 'whole'})`, async () => {
      const text = `chain-${stream}`;
      const res = await chat(chained.url, { model: 'gpt-x', messages: user(text), temperature: 1, stream });
      const raw = await res.text();
      assert.equal(res.status, 200, raw);
      assert.equal(res.headers.get('x-after-temperature'), '0.25', 'the plugin after the pauses saw the rewritten request');
      const loops = res.headers.get('x-pauser-loop').split(', ');
      assert.equal(loops.length, 2, 'both pausers ran');
      assert.equal(loops[0], loops[1], 'on the request\'s one loop');
      assert.notEqual(res.headers.get('x-pauser-worker'), loops[0]);
      const seen = sent(fake, text);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].body.temperature, 0.25);
      assert.equal(seen[0].headers['x-after'], 'ran');
      assert.equal(seen[0].headers['x-pauser'], 'resumed, resumed');
    });
  }

  test('after max_pause_ms (on_error open) the rest of the pipeline still runs', async () => {
    const text = 'chain-timeout';
    const res = await chat(timedOut.url, { model: 'gpt-x', messages: user(text), temperature: 1 });
    const raw = await res.text();
    assert.equal(res.status, 200, raw);
    assert.equal(res.headers.get('x-after-temperature'), '1', 'the stuck plugin changed nothing');
    const seen = sent(fake, text);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].headers['x-after'], 'ran');
    assert.equal(seen[0].headers['x-pauser'], undefined);
  });
});

describe('many paused requests at once', () => {
  let r;
  before(async () => (r = await pauserRouter({ delay_ms: 100 })));
  after(async () => r?.close());

  test('50 concurrent paused requests each get their own answer', { timeout: 60000 }, async () => {
    const N = 50;
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const stream = i % 2 === 1;
        const { status, headers, raw } = await ask(r.plexus.url, { stream, text: `message-${i}` });
        return { i, stream, status, id: headers.get('x-request-id'), raw };
      }),
    );
    const ids = new Set();
    for (const { i, stream, status, id, raw } of results) {
      assert.equal(status, 200, `request ${i}: ${raw}`);
      assert.ok(id, `request ${i} has an id`);
      ids.add(id);
      // The fake names each answer after the request id plexus forwarded with that request.
      const answerIds = stream
        ? raw.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).id)
        : [JSON.parse(raw).id];
      assert.ok(answerIds.length >= 1);
      for (const a of answerIds) assert.equal(a, `chatcmpl-${id}`, `request ${i}: only its own answer`);
      if (stream) assert.match(raw, /data: \[DONE\]\n\n$/);
      const upstream = r.fake.state.requests.filter((q) => q.headers['x-request-id'] === id);
      assert.equal(upstream.length, 1, `request ${i} reached the upstream once`);
      assert.equal(upstream[0].body.messages[0].content, `message-${i}`, `request ${i} went up with its own message`);
      assert.equal(upstream[0].body.temperature, 0.25);
      assert.equal(upstream[0].body.stream, stream);
    }
    assert.equal(ids.size, N);
    assert.equal(r.fake.state.requests.length, N);
  });
});

describe('config schemas', () => {
  const upstreams = [{ name: 'd', provider: 'demo', models: ['demo'] }];
  const checkConfig = (plugin) => {
    const file = writeConfig(baseConfig(upstreams, { plugins: [plugin] }));
    return { file, r: spawnSync(plexusBin, ['--check-config', file], { encoding: 'utf8', timeout: 10000 }) };
  };
  const refused = (plugin, tail) => {
    const { file, r } = checkConfig(plugin);
    assert.notEqual(r.status, 0, `${JSON.stringify(plugin.config)}: ${r.stdout}${r.stderr}`);
    assert.ok(r.stderr.includes(`${file}: ${tail}`), `expected "${file}: ${tail}" in:\n${r.stderr}`);
    // The router refuses to start with the same message.
    const start = spawnSync(plexusBin, ['--config', file, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(start.status, 0);
    assert.ok(start.stderr.includes(tail), start.stderr);
  };
  const native = (config) => ({ name: 'pauser', type: 'native', path: pauserLib, config });

  test('the pauser\'s own config is checked against its descriptor', () => {
    assert.equal(checkConfig(native({ delay_ms: 5, then: 'respond', work_ms: 0 })).r.status, 0);
    refused(native({ delay_ms: -1 }), 'plugins[0].config.delay_ms: expected an integer from 0 to 600000');
    refused(native({ then: 'later' }), 'plugins[0].config.then: expected one of "resume", "reject", "respond", "never"');
    refused(native({ bogus: 1 }), 'plugins[0].config.bogus: unknown key; allowed keys are: delay_ms, then, fetch, work_ms');
    refused({ ...native({}), max_pause_ms: 0 }, 'plugins[0].max_pause_ms: expected an integer from 1 to 86400000');
  });

  const greeter = script('greeter.lua', `
    schema = {
      greeting = { type = "string", default = "hello", description = "What to say" },
      times = { type = "integer", default = 2, min = 1, max = 5, description = "How many times" },
    }
    function on_request(req, ctx)
      ctx:set_response_header("x-greeting", plexus.config.greeting .. plexus.config.times)
    end`);
  const lua = (config) => ({ name: 'greeter', type: 'lua', path: greeter, config });

  test('a Lua plugin\'s declared schema: out of range and unknown keys are refused', () => {
    assert.equal(checkConfig(lua({})).r.status, 0);
    refused(lua({ times: 9 }), 'plugins[0].config.times: expected an integer from 1 to 5');
    refused(lua({ tymes: 1 }), 'plugins[0].config.tymes: unknown key; allowed keys are: greeting, times');
  });

  for (const [config, expected] of [[{}, 'hello2'], [{ greeting: 'hi', times: 5 }, 'hi5']]) {
    test(`a Lua plugin\'s declared schema: config ${JSON.stringify(config)} is seen as ${expected}`, async () => {
      const fake = await startFakeOpenAI({ name: 'up' });
      const plexus = await startPlexus(baseConfig([{ name: 'up', provider: 'openai', url: fake.url, models: MODELS }], { plugins: [lua(config)] }));
      try {
        for (const stream of [false, true]) {
          const { status, headers, raw } = await ask(plexus.url, { stream });
          assert.equal(status, 200, raw);
          assert.equal(headers.get('x-greeting'), expected);
        }
      } finally {
        await plexus.stop();
        await fake.close();
      }
    });
  }
});
