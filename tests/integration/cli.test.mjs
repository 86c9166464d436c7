// The binary's command line: --check-config, --help, --version, TLS, graceful shutdown.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, parseSse, plexusBin, readRest, repoRoot, startPlexus, user, writeConfig } from './support/plexus.mjs';

const run = (...args) => spawnSync(plexusBin, args, { encoding: 'utf8' });

test('--help and --version', () => {
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--check-config FILE/);
  const version = run('--version');
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^plexus \d+\.\d+\.\d+/);
  const bad = run('--bogus');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown argument '--bogus'/);
});

test('--check-config accepts the shipped example', () => {
  const r = run('--check-config', path.join(repoRoot, 'examples/plexus.json'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /OK/);
});

test('--check-config names the file and the key path of each mistake', () => {
  const cases = [
    [{ upstreams: [{ name: 'a', provider: 'demo', models: ['m'] }, { name: 'b', provider: 'openai', url: 'ftp://x', models: ['m'] }] },
      /: upstreams\[1\]\.url: expected an http\(s\) URL/],
    [{ upstreams: [{ name: 'a', provider: 'demo', models: ['m'], colour: 'red' }] },
      /: upstreams\[0\]\.colour: unknown key; allowed keys are: name, provider, url/],
    [{ listn: '1.2.3.4:5', upstreams: [] }, /: listn: unknown key; allowed keys are: listen, /],
    [{ upstreams: [{ name: 'a', provider: 'nosuch', models: ['m'] }] }, /upstreams\[0\]\.provider: unknown provider 'nosuch'; available: anthropic, demo, llamacpp, ollama, openai/],
    [{ upstreams: [{ name: 'a', provider: 'demo', models: ['m'], options: { tokens_per_second: -1 } }] },
      /upstreams\[0\]\.options\.tokens_per_second: expected a number from 0\.1 to 100000$/m],
    // Every adapter's options go through its declared schema: unknown keys, value types.
    [{ upstreams: [{ name: 'a', provider: 'llamacpp', url: 'http://127.0.0.1:1', models: ['m'], options: { ctx: 1 } }] },
      /upstreams\[0\]\.options\.ctx: unknown key; this section takes none/],
    [{ upstreams: [{ name: 'a', provider: 'openai', url: 'http://127.0.0.1:1/v1', models: ['m'], options: { headers: { 'x-a': 1 } } }] },
      /upstreams\[0\]\.options\.headers\.x-a: expected a string/],
    [{ upstreams: [{ name: 'a', provider: 'anthropic', api_key: 'k', models: ['m'], options: { default_max_tokens: 0 } }] },
      /upstreams\[0\]\.options\.default_max_tokens: expected an integer >= 1/],
    [{ upstreams: [{ name: 'a', provider: 'openai', models: ['m'] }] }, /upstreams\[0\]\.url: the openai provider needs/],
    [{ keys: [{ id: 'k', key_sha256: 'abc' }], upstreams: [{ name: 'a', provider: 'demo', models: ['m'] }] },
      /keys\[0\]\.key_sha256: expected 64 hex digits/],
    [{ limits: { max_body_bytes: 'big' }, upstreams: [{ name: 'a', provider: 'demo', models: ['m'] }] },
      /limits\.max_body_bytes: expected an integer/],
    [{}, /upstreams: required key is missing/],
  ];
  for (const [config, pattern] of cases) {
    const file = writeConfig(config);
    const r = run('--check-config', file);
    assert.equal(r.status, 1, JSON.stringify(config));
    assert.ok(r.stderr.startsWith(file), `names the file: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-')), 'broken.json');
  fs.writeFileSync(broken, '{\n  // a comment is fine\n  "listen": "127.0.0.1:1",\n  "upstreams": [,]\n}\n');
  const r = run('--check-config', broken);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /broken\.json:4:\d+: invalid JSON/);
  const missing = run('--check-config', '/nonexistent/plexus.json');
  assert.match(missing.stderr, /\/nonexistent\/plexus\.json: cannot open the file/);
});

test('adapters load from providers_dir; a wrong ABI or an unknown name is refused with the path', () => {
  const dir = path.join(path.dirname(plexusBin), 'test-providers');
  const wrong = writeConfig({ providers_dir: dir, upstreams: [{ name: 'w', provider: 'wrongabi', models: ['m'] }] });
  const r = run('--check-config', wrong);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /upstreams\[0\]\.provider: .*libplexus_provider_wrongabi\.so: built for ABI 999, this router speaks ABI 2/);
  const unknown = writeConfig({ providers_dir: dir, upstreams: [{ name: 'd', provider: 'demo', models: ['m'] }] });
  assert.match(run('--check-config', unknown).stderr, /upstreams\[0\]\.provider: unknown provider 'demo'; available: wrongabi/);
  const traversal = writeConfig({ upstreams: [{ name: 'd', provider: '../../etc/x', models: ['m'] }] });
  assert.match(run('--check-config', traversal).stderr, /unknown provider '\.\.\/\.\.\/etc\/x'/);
});

test('keys may be given as SHA-256 hashes', async () => {
  const hash = execFileSync('sha256sum', { input: 'sk-hashed-key-1' }).toString().split(' ')[0];
  const plexus = await startPlexus(baseConfig([{ name: 'd', provider: 'demo', models: ['demo'], options: { first_token_ms: 0 } }],
    { keys: [{ id: 'hashed', key_sha256: hash }] }));
  try {
    const ok = await chat(plexus.url, { model: 'demo', messages: user('hi'), max_tokens: 2 }, { key: 'sk-hashed-key-1' });
    assert.equal(ok.status, 200);
    const no = await chat(plexus.url, { model: 'demo', messages: user('hi') }, { key: hash });
    assert.equal(no.status, 401, 'the hash itself is not a key');
  } finally {
    await plexus.stop();
  }
});

test('TLS: given a certificate and key, the router serves HTTPS', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const config = baseConfig([{ name: 'd', provider: 'demo', models: ['demo'], options: { first_token_ms: 0, tokens_per_second: 1000 } }],
    { tls: { cert: 'cert.pem', key: 'key.pem' } });
  const file = path.join(dir, 'plexus.json');
  fs.writeFileSync(file, JSON.stringify(config)); // relative paths resolve against the config's folder
  const plexus = await startPlexus(file);
  try {
    assert.match(plexus.url, /^https:/);
    const body = JSON.stringify({ model: 'demo', messages: user('hi'), max_tokens: 3, stream: true });
    const text = await new Promise((resolve, reject) => {
      const req = https.request(`${plexus.url}/v1/chat/completions`, {
        method: 'POST', rejectUnauthorized: false,
        headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
      }, (res) => {
        let t = '';
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(parseSse(text).at(-1), '[DONE]');
  } finally {
    await plexus.stop();
  }
});

test('SIGTERM with a stream still running at the end of the grace period: a clean exit', async () => {
  const fake = await startFakeOpenAI();
  const plexus = await startPlexus(baseConfig([{ name: 'f', provider: 'openai', url: fake.url, models: ['endless'] }],
    { limits: { shutdown_grace_ms: 200 } }));
  try {
    const res = await chat(plexus.url, { model: 'endless', messages: user('hi'), stream: true });
    await res.body.getReader().read();
    plexus.proc.kill('SIGTERM');
    const { code, signal } = await plexus.exited;
    assert.equal(signal, null, plexus.stderr());
    assert.equal(code, 0);
    assert.match(plexus.stderr(), /grace period over; closing 1 requests still in flight/);
  } finally {
    await plexus.stop();
    await fake.close();
  }
});

test('SIGTERM: readiness turns 503, new requests get 503, the stream in flight completes, exit 0', async () => {
  const fake = await startFakeOpenAI();
  const plexus = await startPlexus(baseConfig([{ name: 'f', provider: 'openai', url: fake.url, models: ['slow'] }],
    { limits: { shutdown_grace_ms: 5000 } }));
  try {
    const res = await chat(plexus.url, { model: 'slow', messages: user('hi'), stream: true });
    const reader = res.body.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    plexus.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const ready = await fetch(`${plexus.url}/readyz`);
    assert.equal(ready.status, 503);
    const refused = await chat(plexus.url, { model: 'slow', messages: user('hi') });
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error.code, 'shutting_down');
    const events = parseSse(await readRest(reader, text));
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(events.length, 1 + 20 + 1 + 1, 'role chunk, 20 content chunks, finish chunk, [DONE]');
    const { code } = await plexus.exited;
    assert.equal(code, 0);
  } finally {
    await plexus.stop();
    await fake.close();
  }
});

test('--print-schema prints the declared sections and a plugin descriptor as Markdown tables', () => {
  const sections = spawnSync(plexusBin, ['--print-schema'], { encoding: 'utf8' });
  assert.equal(sections.status, 0, sections.stderr);
  for (const name of ['limits', 'workers', 'routing.weights', 'routing.breaker', 'routing.prefix_affinity', 'log'])
    assert.match(sections.stdout, new RegExp(`### \`${name.replace('.', '\\.')}\``));
  assert.match(sections.stdout, /\| `max_body_bytes` \| integer \| `8388608` \| .* \(from 1024 to 1073741824\) \|/);
  const plugin = path.join(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'), 'libplexus_web.so');
  const web = spawnSync(plexusBin, ['--print-schema', plugin], { encoding: 'utf8' });
  assert.equal(web.status, 0, web.stderr);
  assert.match(web.stdout, /^### web \d+\.\d+\.\d+/);
  assert.match(web.stdout, /\| `search_url` \| string \| required \|/);
  const missing = spawnSync(plexusBin, ['--print-schema', '/no/such/plugin.so'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /\/no\/such\/plugin\.so: file not found/);
});
