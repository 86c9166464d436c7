// The ledger on PostgreSQL (Debian's, started by scripts/test.sh): the same mixed requests through
// a router on SQLite and one on PostgreSQL give the same ledger (usage, earnings), receipts and
// API keys work on both, and PostgreSQL keeps it all across a restart.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, startPlexus, user, writeConfig } from './support/plexus.mjs';

const admin = process.env.PLEXUS_TEST_POSTGRES;
const adminKey = 'sk-pg-admin-key';
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// A fresh database per router, dropped at the end.
function freshDatabase() {
  assert.ok(admin, 'PLEXUS_TEST_POSTGRES is set by scripts/test.sh (PostgreSQL must run for this suite)');
  const name = `plexus_test_${crypto.randomBytes(6).toString('hex')}`;
  execFileSync('psql', [admin, '-qc', `CREATE DATABASE ${name}`]);
  cleanups.push(() => execFileSync('psql', [admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]));
  return admin.replace(/\/[^/]*$/, `/${name}`);
}

async function router(fake, ledger) {
  const file = writeConfig(baseConfig(
    [{ name: 'n', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 1.5, output_per_1k: 2.5 } }],
    { keys: [{ id: 'demo', key: demoKey }, { id: 'admin', key: adminKey, admin: true }], ledger: { flush_ms: 50, ...ledger } },
  ));
  const plexus = await startPlexus(file);
  cleanups.push(() => plexus.stop());
  return { plexus, file };
}

const get = async (plexus, path) => (await fetch(`${plexus.url}${path}`, { headers: { authorization: `Bearer ${adminKey}` } })).json();

async function mixed(plexus) {
  for (let i = 0; i < 10; i++) await (await chat(plexus.url, { model: 'gpt-x', messages: user(`q${i}`) })).json();
  for (let i = 0; i < 4; i++) await (await chat(plexus.url, { model: 'slow', messages: user(`s${i}`), stream: true })).text();
  await new Promise((r) => setTimeout(r, 300));
}

test('SQLite and PostgreSQL give the same ledger; PostgreSQL keeps it across a restart', async () => {
  const fake = await startFakeOpenAI({ name: 'n' });
  cleanups.push(() => fake.close());
  const lite = await router(fake, {});
  const pg = await router(fake, { postgres: freshDatabase() });
  await mixed(lite.plexus);
  await mixed(pg.plexus);
  const strip = (rows) => rows.map(({ day, key, model, requests, prompt_tokens, completion_tokens, cost }) => ({ day, key, model, requests, prompt_tokens, completion_tokens, cost }));
  const liteUsage = strip((await get(lite.plexus, '/v1/usage')).data);
  const pgUsage = strip((await get(pg.plexus, '/v1/usage')).data);
  assert.equal(pgUsage.length, 2);
  assert.deepEqual(pgUsage, liteUsage);
  const liteEarn = await get(lite.plexus, '/v1/nodes/n/earnings');
  const pgEarn = await get(pg.plexus, '/v1/nodes/n/earnings');
  assert.deepEqual({ ...pgEarn, days: undefined }, { ...liteEarn, days: undefined });

  // Receipts and API keys on PostgreSQL, and a restart.
  const res = await chat(pg.plexus.url, { model: 'gpt-x', messages: user('receipt') });
  await res.json();
  const id = res.headers.get('x-request-id');
  const key = await (await fetch(`${pg.plexus.url}/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ id: 'pg-key' }) })).json();
  pg.plexus.proc.kill('SIGTERM');
  await pg.plexus.exited;
  const again = await startPlexus(pg.file);
  cleanups.push(() => again.stop());
  assert.equal((await get(again, `/v1/receipts/${id}`)).receipt, res.headers.get('x-plexus-receipt'));
  assert.equal((await get(again, '/v1/usage')).data.reduce((s, r) => s + r.requests, 0), 15);
  const ok = await chat(again.url, { model: 'gpt-x', messages: user('pg key') }, { key: key.key });
  assert.equal(ok.status, 200);
  await ok.json();
});

test('an unreachable PostgreSQL stops the start naming ledger.postgres', async () => {
  const fake = await startFakeOpenAI();
  cleanups.push(() => fake.close());
  const file = writeConfig(baseConfig([{ name: 'n', provider: 'openai', url: fake.url, models: ['gpt-x'] }],
    { ledger: { postgres: 'postgresql://nobody:wrong@127.0.0.1:1/none' } }));
  await assert.rejects(startPlexus(file), /ledger\.postgres: cannot connect to the ledger's PostgreSQL/);
});
