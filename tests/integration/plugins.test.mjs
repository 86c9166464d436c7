// The plugin pipeline against the running router: every hook from both runtimes, and every
// failure mode leaving the server serving.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, parseSse, plexusBin, repoRoot, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-plugins-'));
const script = (name, source) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  return file;
};
const content = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e)).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
const waitFor = async (fn, ms = 3000) => {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return fn();
};

describe('Lua hooks', () => {
  let alpha, beta, plexus;
  before(async () => {
    alpha = await startFakeOpenAI({ name: 'alpha' });
    beta = await startFakeOpenAI({ name: 'beta' });
    const rewrite = script('rewrite.lua', `
      function on_request(req, ctx)
        local text = req.messages[#req.messages].content
        if text == "forbidden" then
          return ctx:reject{ status = 403, message = "not on this router", code = "policy_denied" }
        end
        if text == "canned" then
          return ctx:respond{ id = "chatcmpl-canned", object = "chat.completion", created = 1, model = req.model,
            choices = { { index = 0, message = { role = "assistant", content = "From the plugin." }, finish_reason = "stop" } },
            usage = { prompt_tokens = 1, completion_tokens = 3, total_tokens = 4 } }
        end
        ctx:set_upstream_header("X-From-Lua", plexus.config.tag)
        req.temperature = 0.1
        req.injected_by_lua = true
        return plexus.MODIFIED
      end`);
    const route = script('route.lua', `
      function on_route(cands, ctx)
        if ctx.model ~= "gpt-x" then return plexus.CONTINUE end
        for i, c in ipairs(cands) do
          if c.node == plexus.config.prefer then return plexus.PICK, i end
        end
      end`);
    const complete = script('complete.lua', `
      function on_complete(result, ctx)
        ctx:add_field("plexus_meter", { node = result.node, tokens = result.prompt_tokens + result.completion_tokens, status = result.status })
        ctx:add_header("x-metered-by", "lua")
      end`);
    plexus = await startPlexus(baseConfig(
      [
        { name: 'alpha', provider: 'openai', url: alpha.url, models: ['gpt-x', 'leaky'] },
        { name: 'beta', provider: 'openai', url: beta.url, models: ['gpt-x'] },
      ],
      { plugins: [
        { name: 'rewrite', type: 'lua', path: rewrite, config: { tag: 'seen' } },
        { name: 'prefer-beta', type: 'lua', path: route, config: { prefer: 'beta' } },
        { name: 'redact', type: 'lua', path: path.join(repoRoot, 'examples/plugins/redact.lua') },
        { name: 'meter', type: 'lua', path: complete },
      ] },
    ));
  });
  after(async () => {
    await plexus?.stop();
    await alpha?.close();
    await beta?.close();
  });

  test('on_request rewrites the request the upstream sees, with a header', async () => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), temperature: 1.5 });
    assert.equal(res.status, 200);
    await res.json();
    const seen = beta.state.requests.at(-1);
    assert.equal(seen.body.temperature, 0.1);
    assert.equal(seen.body.injected_by_lua, true);
    assert.equal(seen.headers['x-from-lua'], 'seen');
  });

  test('on_request rejects with the status and body it chose', async () => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('forbidden') });
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.deepEqual(body.error, { message: 'not on this router', type: 'invalid_request_error', param: null, code: 'policy_denied' });
  });

  test('on_request answers directly, whole and streamed, without any upstream', async () => {
    const before = alpha.state.requests.length + beta.state.requests.length;
    const whole = await (await chat(plexus.url, { model: 'gpt-x', messages: user('canned') })).json();
    assert.equal(whole.choices[0].message.content, 'From the plugin.');
    const streamed = await sseEvents(await chat(plexus.url, { model: 'gpt-x', messages: user('canned'), stream: true }));
    assert.equal(content(streamed), 'From the plugin.');
    assert.equal(streamed.at(-1), '[DONE]');
    assert.equal(alpha.state.requests.length + beta.state.requests.length, before);
  });

  test('on_route pick is honoured', async () => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
    assert.equal(res.headers.get('x-plexus-node'), 'beta', 'beta is second in the config but picked');
    assert.match((await res.json()).choices[0].message.content, /beta/);
  });

  test('on_chunk redacts an address and a number split across chunks of a real stream', async () => {
    const res = await chat(plexus.url, { model: 'leaky', messages: user('hi'), stream: true });
    const events = await sseEvents(res);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(content(events), 'Mail [email] or call [phone] today.');
    const whole = await (await chat(plexus.url, { model: 'leaky', messages: user('hi') })).json();
    assert.equal(whole.choices[0].message.content, 'Mail [email] or call [phone] today.');
  });

  test('on_complete sees the outcome and adds fields and headers', async () => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
    assert.equal(res.headers.get('x-metered-by'), 'lua');
    const body = await res.json();
    assert.deepEqual(body.plexus_meter, { node: 'beta', tokens: 10, status: 200 });
    const events = await sseEvents(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true }));
    const last = JSON.parse(events.at(-2));
    assert.deepEqual(last.plexus_meter, { node: 'beta', tokens: 10, status: 200 }, 'a last chunk before [DONE]');
  });
});

describe('native plugins', () => {
  let fake, other, plexus;
  before(async () => {
    fake = await startFakeOpenAI();
    other = await startFakeOpenAI({ name: 'other' });
    plexus = await startPlexus(baseConfig(
      [
        { name: 'fake', provider: 'openai', url: fake.url, models: ['gpt-x', 'blocked'] },
        { name: 'other', provider: 'openai', url: other.url, models: ['picked'] },
        { name: 'fake-too', provider: 'openai', url: fake.url, models: ['picked'] },
      ],
      { plugins: [
        { name: 'hooks', type: 'native', path: path.join(pluginDir, 'libplexus_test_native_hooks.so'),
          config: { reject_model: 'blocked', pick: 'fake-too', uppercase: true, meter: true } },
        { name: 'tokens', type: 'native', path: path.join(pluginDir, 'libplexus_token_counter.so'), config: { header: 'X-Plexus-Route', value: 'native' } },
        { name: 'thrower', type: 'native', path: path.join(pluginDir, 'libplexus_test_misbehaving.so'), config: { throw_in: 'on_request on_chunk on_route' } },
      ] },
    ));
  });
  after(async () => {
    await plexus?.stop();
    await fake?.close();
    await other?.close();
  });

  test('native on_request rewrites the request and rejects with its own status and body', async () => {
    const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), temperature: 1.9 });
    await ok.json();
    assert.equal(fake.state.requests.at(-1).body.temperature, 0.3);
    const res = await chat(plexus.url, { model: 'blocked', messages: user('hi') });
    assert.equal(res.status, 451);
    assert.deepEqual((await res.json()).error, { message: 'blocked by the native plugin', type: 'invalid_request_error', param: 'model', code: 'native_block' });
  });

  test('native on_route pick is honoured', async () => {
    const res = await chat(plexus.url, { model: 'picked', messages: user('hi') });
    assert.equal(res.headers.get('x-plexus-node'), 'fake-too', 'second in the config, picked');
    await res.json();
  });

  test('native on_chunk rewrites a real stream and a whole answer; on_complete adds data', async () => {
    const events = await sseEvents(await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true }));
    assert.equal(content(events), 'HELLO FROM FAKE');
    assert.deepEqual(JSON.parse(events.at(-2)).native_meter, { tokens: 10, node: 'fake' });
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
    assert.equal(res.headers.get('x-native-meter'), '10');
    const body = await res.json();
    assert.equal(body.choices[0].message.content, 'HELLO FROM FAKE');
    assert.deepEqual(body.native_meter, { tokens: 10, node: 'fake' });
  });

  test('the template adds an upstream header and counts tokens', async () => {
    const a = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
    const first = Number(a.headers.get('x-plexus-tokens-served'));
    await a.json();
    assert.equal(fake.state.requests.at(-1).headers['x-plexus-route'], 'native');
    const b = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
    await b.json();
    assert.equal(Number(b.headers.get('x-plexus-tokens-served')), first + 10);
  });

  test('a hook that throws (on_error open) is skipped and logged; the request succeeds', async () => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), stream: true });
    const events = await sseEvents(res);
    assert.equal(content(events), 'HELLO FROM FAKE', 'the throwing plugin after it is skipped');
    assert.ok(await waitFor(() => /\[plugin:thrower\] on_chunk failed for request req_\w+: boom in on_chunk/.test(plexus.stderr())));
    assert.match(plexus.stderr(), /\[plugin:thrower\] on_request failed/);
  });
});

describe('failure modes', () => {
  let fake, plexus, reloadable;
  before(async () => {
    fake = await startFakeOpenAI();
    reloadable = script('reloadable.lua', `function on_complete(r, ctx) ctx:add_header("x-version", "1") end`);
    plexus = await startPlexus(baseConfig(
      [{ name: 'fake', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow', 'error-open', 'error-closed', 'loop', 'bomb', 'native-closed'] }],
      {
        keys: [{ id: 'demo', key: demoKey }, { id: 'ops', key: 'sk-admin-key-1', admin: true }],
        plugins: [
          { name: 'err-open', type: 'lua', path: script('err_open.lua', `function on_request(req) if req.model == "error-open" then local x = nil; return x.y end end`) },
          { name: 'err-closed', type: 'lua', on_error: 'closed', path: script('err_closed.lua', `function on_request(req) if req.model == "error-closed" then error("deliberate") end end`) },
          { name: 'looper', type: 'lua', cpu_limit_ms: 5, path: script('loop.lua', `
              function on_chunk(chunk, ctx) if chunk and chunk.model == "loop" then while true do end end end`) },
          { name: 'bomb', type: 'lua', on_error: 'closed', memory_limit_mb: 2, path: script('bomb.lua', `
              function on_request(req) if req.model == "bomb" then local t = {} for i = 1, 1e7 do t[i] = tostring(i):rep(50) end end end`) },
          { name: 'native-closed', type: 'native', on_error: 'closed', path: path.join(pluginDir, 'libplexus_test_misbehaving.so'), config: { throw_in: 'on_route', model: 'native-closed' } },
          { name: 'reloadable', type: 'lua', path: reloadable },
          { name: 'small', type: 'lua', memory_limit_mb: 1, path: script('small.lua', `
              kept = nil
              function on_request(req, ctx)
                if kept then kept:set_upstream_header("X-Late", "1") end -- a ctx kept from an earlier call
                kept = ctx
                return plexus.CONTINUE
              end`) },
        ],
      },
    ));
  });
  after(async () => {
    await plexus?.stop();
    await fake?.close();
  });

  const ok = async (model, stream = false) => {
    const res = await chat(plexus.url, { model, messages: user('hi'), stream });
    return { res, text: await res.text() };
  };

  test('a Lua runtime error with on_error open: logged, request goes on', async () => {
    const { res } = await ok('error-open');
    assert.equal(res.status, 200);
    assert.match(plexus.stderr(), /\[plugin:err-open\] on_request failed for request \S+: .*err_open\.lua:1: attempt to index a nil value/);
  });

  test('a Lua runtime error with on_error closed: 500 plugin_error naming the plugin', async () => {
    const { res, text } = await ok('error-closed');
    assert.equal(res.status, 500);
    const body = JSON.parse(text);
    assert.equal(body.error.code, 'plugin_error');
    assert.match(body.error.message, /err-closed/);
  });

  test('an infinite loop is stopped by the CPU time budget; the stream completes', async () => {
    const { res, text } = await ok('loop', true);
    assert.equal(res.status, 200);
    assert.equal(parseSse(text).at(-1), '[DONE]');
    assert.match(plexus.stderr(), /\[plugin:looper\] on_chunk failed .*CPU time budget exceeded/);
  });

  test('a memory bomb hits the cap: the request fails, the server does not', async () => {
    const { res, text } = await ok('bomb');
    assert.equal(res.status, 500);
    assert.equal(JSON.parse(text).error.code, 'plugin_error');
    assert.match(plexus.stderr(), /\[plugin:bomb\] on_request failed .*not enough memory/);
  });

  test('a throwing native hook with on_error closed fails the request', async () => {
    const { res, text } = await ok('native-closed');
    assert.equal(res.status, 500);
    assert.match(JSON.parse(text).error.message, /native-closed/);
  });

  test('a body too big for a Lua plugin fails that plugin, not the server; one too deep for the parser is refused', async () => {
    const big = await chat(plexus.url, { model: 'gpt-x', messages: user('x'.repeat(2_000_000)) });
    assert.equal(big.status, 200, 'on_error open: the request goes on without the plugin');
    await big.text();
    // As deep as the router's parser takes (1,024 levels): the hooks read only the fields they use
    // (docs/plugins.md), so nesting none of them reads costs them nothing.
    const deep = `{"model":"gpt-x","messages":[{"role":"user","content":"hi"}],"deep":${'['.repeat(1000)}${']'.repeat(1000)}}`;
    const d = await chat(plexus.url, deep);
    assert.equal(d.status, 200, 'no Lua plugin reads "deep"');
    await d.text();
    const deeper = `{"model":"gpt-x","messages":[{"role":"user","content":"hi"}],"deep":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const e = await chat(plexus.url, deeper);
    assert.equal(e.status, 400, 'nested past the parser\'s limit: refused at the edge');
    assert.equal((await e.json()).error.code, 'invalid_json');
    assert.match(plexus.stderr(), /\[plugin:small\] on_request failed .*not enough memory/);
  });

  test('a ctx kept past its hook fails cleanly', async () => {
    await ok('gpt-x');
    await ok('gpt-x');
    assert.match(plexus.stderr(), /\[plugin:small\] on_request failed .*ctx or candidates used after their hook returned/);
  });

  test('after all that, the server still serves', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await ok('gpt-x', i % 2 === 1)).res.status, 200);
  });

  test('reload: a syntax error is refused and the old script keeps running; a fix is taken', async () => {
    const version = async () => (await ok('gpt-x')).res.headers.get('x-version');
    assert.equal(await version(), '1');
    fs.writeFileSync(reloadable, 'function on_complete(r, ctx) ctx:add_header("x-version", "2" end');
    plexus.proc.kill('SIGHUP');
    assert.ok(await waitFor(() => /config reload refused, the running config stays: .*plugins\[\d\] \(reloadable, .*reloadable\.lua\): .*reloadable\.lua:1:/.test(plexus.stderr())));
    assert.equal(await version(), '1');

    const denied = await fetch(`${plexus.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${demoKey}` } });
    assert.equal(denied.status, 401, 'a key without admin cannot reload');
    const refused = await fetch(`${plexus.url}/admin/reload`, { method: 'POST', headers: { authorization: 'Bearer sk-admin-key-1' } });
    assert.equal(refused.status, 422);
    const report = await refused.json();
    assert.equal(report.reloaded, false);
    assert.equal(report.error.code, 'invalid_config');
    assert.match(report.error.message, /plugins\[\d\] \(reloadable, .*reloadable\.lua\)/, 'the file and key path');

    fs.writeFileSync(reloadable, 'function on_complete(r, ctx) ctx:add_header("x-version", "2") end');
    const done = await fetch(`${plexus.url}/admin/reload`, { method: 'POST', headers: { authorization: 'Bearer sk-admin-key-1' } });
    assert.equal(done.status, 200);
    assert.ok((await done.json()).plugins.some((p) => p.plugin === 'reloadable' && p.reloaded));
    assert.equal(await version(), '2');
  });
});

describe('plugins that cannot load refuse the start, naming plugin, file and reason', () => {
  const upstreams = [{ name: 'd', provider: 'demo', models: ['demo'] }];
  const cases = [
    [{ name: 'abi', type: 'native', path: path.join(pluginDir, 'libplexus_test_wrong_abi.so') }, /plugins\[0\] \(abi, .*libplexus_test_wrong_abi\.so\): built for ABI 999, this router speaks ABI 2/],
    [{ name: 'nosym', type: 'native', path: '/lib/x86_64-linux-gnu/libc.so.6' }, /plugins\[0\] \(nosym, .*libc\.so\.6\): not a plexus library/],
    [{ name: 'gone', type: 'native', path: '/nonexistent/libnothing.so' }, /plugins\[0\] \(gone, \/nonexistent\/libnothing\.so\): file not found/],
    [{ name: 'ctor', type: 'native', path: path.join(pluginDir, 'libplexus_test_misbehaving.so'), config: { throw_in: 'constructor' } }, /plugins\[0\] \(ctor, .*\): the plugin's factory failed: refusing to start/],
    [{ name: 'syntax', type: 'lua', path: null }, /plugins\[0\] \(syntax, .*bad\.lua\): .*bad\.lua:3: unexpected symbol near .end./],
    [{ name: 'empty', type: 'lua', path: null, empty: true }, /defines none of on_request, on_route, on_chunk, on_complete/],
    [{ name: 'x', type: 'python', path: '/x' }, /plugins\[0\]\.type: expected "native" or "lua"/],
    [{ name: 'x', type: 'native', path: '/x', cpu_limit_ms: 5 }, /cpu_limit_ms and memory_limit_mb apply to Lua plugins only/],
    [{ name: 'x', type: 'lua', path: '/x', instruction_limit: 100000 }, /plugins\[0\]\.instruction_limit: replaced by cpu_limit_ms: a Lua hook's budget is CPU time now/],
  ];
  for (const [plugin, pattern] of cases) {
    test(`${plugin.name}: ${pattern.source.slice(0, 50)}`, () => {
      if (plugin.path === null) plugin.path = script(plugin.empty ? 'empty.lua' : 'bad.lua', plugin.empty ? 'local x = 1\n' : 'function on_request(req)\n  return (\nend\n');
      delete plugin.empty;
      const file = writeConfig(baseConfig(upstreams, { plugins: [plugin] }));
      for (const args of [['--check-config', file], ['--config', file, '--listen', '127.0.0.1:0']]) {
        const r = spawnSync(plexusBin, args, { encoding: 'utf8', timeout: 10000 });
        assert.equal(r.status, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, pattern);
      }
    });
  }
});
