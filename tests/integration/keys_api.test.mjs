// Keys through the admin API: created (shown once, kept as a hash in the ledger), listed, working
// at once with their group, limits and budget, revoked at once, and kept across restarts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, startPlexus, user, writeConfig } from './support/plexus.mjs';

const adminKey = 'sk-keys-admin-key';
let fake, file, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  file = writeConfig(baseConfig([{ name: 'f', provider: 'openai', url: fake.url, models: ['gpt-x'], price: { input_per_1k: 1, output_per_1k: 1 } }],
    { keys: [{ id: 'demo', key: demoKey }, { id: 'admin', key: adminKey, admin: true }] }));
  plexus = await startPlexus(file);
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

const admin = async (method, path, body, key = adminKey) => {
  const res = await fetch(`${plexus.url}${path}`, {
    method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
};

test('create, use, list, revoke; the key is shown once and stored only as its hash', async () => {
  const created = await admin('POST', '/v1/keys', { id: 'team-a', rpm: 3, budget: 10 });
  assert.equal(created.status, 201);
  assert.match(created.body.key, /^sk-plexus-[\w-]{43}$/);
  assert.deepEqual({ ...created.body, key: undefined, created: undefined },
    { object: 'api_key', id: 'team-a', group: 'public', admin: false, rpm: 3, tpm: 0, source: 'api', budget: 10, spent: 0, key: undefined, created: undefined });
  const use = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') }, { key: created.body.key });
  assert.equal(use.status, 200);
  assert.equal(use.headers.get('x-ratelimit-limit-requests'), '3');
  await use.json();
  const listed = await admin('GET', '/v1/keys');
  assert.deepEqual(listed.body.data.map((k) => [k.id, k.source]), [['demo', 'config'], ['admin', 'config'], ['team-a', 'api']]);
  assert.ok(listed.body.data[2].spent > 0);
  assert.ok(!JSON.stringify(listed.body).includes(created.body.key), 'the key is never shown again');
  const ledger = fs.readFileSync(file.replace(/plexus\.json$/, 'plexus-ledger.sqlite'));
  assert.ok(!ledger.includes(Buffer.from(created.body.key)), 'the ledger holds no key, only its hash');

  assert.equal((await admin('POST', '/v1/keys', { id: 'team-a' })).status, 409);
  assert.equal((await admin('POST', '/v1/keys', { rpm: -1 })).status, 400);
  assert.match((await admin('POST', '/v1/keys', { colour: 'red' })).body.error.message, /colour: unknown key/);
  assert.equal((await admin('POST', '/v1/keys', {}, demoKey)).status, 401);
  assert.equal((await admin('DELETE', '/v1/keys/demo')).body.error.code, 'key_in_config');

  assert.equal((await admin('DELETE', '/v1/keys/team-a')).status, 200);
  assert.equal((await chat(plexus.url, { model: 'gpt-x', messages: user('after') }, { key: created.body.key })).status, 401);
  assert.equal((await admin('DELETE', '/v1/keys/team-a')).status, 404);
});

test('API keys survive a restart; revoked ones stay revoked', async () => {
  const kept = await admin('POST', '/v1/keys', { id: 'kept', group: 'public' });
  const gone = await admin('POST', '/v1/keys', { id: 'gone' });
  await admin('DELETE', '/v1/keys/gone');
  plexus.proc.kill('SIGTERM');
  await plexus.exited;
  plexus = await startPlexus(file);
  const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('back') }, { key: kept.body.key });
  assert.equal(ok.status, 200);
  await ok.json();
  assert.equal((await chat(plexus.url, { model: 'gpt-x', messages: user('no') }, { key: gone.body.key })).status, 401);
});

test('plexus keys create | list | revoke wraps the admin API', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { plexusBin } = await import('./support/plexus.mjs');
  const run = async (...args) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(plexusBin, ['keys', ...args, '--router', plexus.url, '--admin-key', adminKey]);
      return { code: 0, stdout, stderr };
    } catch (e) {
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const created = await run('create', '--id', 'cli-made', '--rpm', '7', '--budget', '2.5');
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  assert.match(key, /^sk-plexus-/);
  assert.match(created.stderr, /shown only this once/);
  const ok = await chat(plexus.url, { model: 'gpt-x', messages: user('cli') }, { key });
  assert.equal(ok.status, 200);
  await ok.json();
  const listed = await run('list');
  assert.match(listed.stdout, /^cli-made\s+public\s+no\s+7\s+0\s+2\.5/m);
  assert.equal((await run('create', '--id', 'cli-made')).code, 1);
  assert.equal((await run('revoke', 'cli-made')).code, 0);
  assert.equal((await chat(plexus.url, { model: 'gpt-x', messages: user('gone') }, { key })).status, 401);
  assert.equal((await run('frobnicate')).code, 2);
});
