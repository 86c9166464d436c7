// The ledger through the real router: every request's charge recorded off the loops, usage per
// key by day and model, a node's earnings with the network's fee, a clean stop that loses
// nothing, a kill -9 that loses at most the flush window, and budgets that survive a restart.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const adminKey = 'sk-ledger-admin-key';
const otherKey = 'sk-ledger-other-key';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const today = () => new Date().toISOString().slice(0, 10);
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(ledger = {}, extraKeys = []) {
  const fake = await startFakeOpenAI({ name: 'earner' });
  cleanups.push(() => fake.close());
  const file = writeConfig(baseConfig(
    [{ name: 'earner', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 1, output_per_1k: 2 } }],
    {
      keys: [{ id: 'demo', key: demoKey }, { id: 'other', key: otherKey }, { id: 'admin', key: adminKey, admin: true }, ...extraKeys],
      ledger: { fee: 0.25, ...ledger },
    },
  ));
  return { fake, file };
}

async function start(file) {
  const plexus = await startPlexus(file);
  cleanups.push(() => plexus.stop());
  return plexus;
}

const get = async (plexus, path, key) => {
  const res = await fetch(`${plexus.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
};

test('usage by key, day and model, and node earnings, match what clients received', async () => {
  const { file } = await setup();
  const plexus = await start(file);
  let prompt = 0, completion = 0;
  for (let i = 0; i < 3; i++) {
    const u = (await (await chat(plexus.url, { model: 'gpt-x', messages: user(`hi ${i}`) })).json()).usage;
    prompt += u.prompt_tokens;
    completion += u.completion_tokens;
  }
  const events = await sseEvents(await chat(plexus.url, { model: 'slow', messages: user('count'), stream: true, stream_options: { include_usage: true } }));
  const streamed = JSON.parse(events.at(-2)).usage;
  await (await chat(plexus.url, { model: 'gpt-x', messages: user('other') }, { key: otherKey })).json();

  const mine = await get(plexus, '/v1/usage', demoKey);
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.body.data.map((r) => [r.day, r.key, r.model, r.requests]), [[today(), 'demo', 'gpt-x', 3], [today(), 'demo', 'slow', 1]]);
  const gptx = mine.body.data[0];
  assert.equal(gptx.prompt_tokens, prompt);
  assert.equal(gptx.completion_tokens, completion);
  assert.ok(Math.abs(gptx.cost - (prompt * 1 + completion * 2) / 1000) < 1e-9);
  assert.equal(mine.body.data[1].completion_tokens, streamed.completion_tokens);
  assert.ok(Math.abs(mine.body.data[1].cost - streamed.cost) < 1e-9);

  const all = await get(plexus, '/v1/usage', adminKey);
  assert.deepEqual([...new Set(all.body.data.map((r) => r.key))], ['demo', 'other']);
  assert.equal((await get(plexus, '/v1/usage?from=2020-01-01&to=2020-12-31', adminKey)).body.data.length, 0);
  assert.equal((await get(plexus, '/v1/usage?since=yesterday', demoKey)).status, 400);

  const statement = await get(plexus, '/v1/nodes/earner/earnings', adminKey);
  assert.equal(statement.status, 200);
  const total = all.body.data.reduce((s, r) => s + r.cost, 0);
  assert.equal(statement.body.requests, 5);
  assert.ok(Math.abs(statement.body.gross - total) < 1e-9);
  assert.ok(Math.abs(statement.body.fee - total * 0.25) < 1e-9);
  assert.ok(Math.abs(statement.body.net - total * 0.75) < 1e-9);
  assert.equal(statement.body.days[0].day, today());
  assert.equal((await get(plexus, '/v1/nodes/earner/earnings', demoKey)).status, 401);
});

test('a clean stop loses nothing; a restart reads the same ledger, and budgets go on from it', async () => {
  const { file } = await setup({ flush_ms: 60000 }, [{ id: 'capped', key: 'sk-ledger-capped-key', budget: 0.05 }]);
  let plexus = await start(file);
  for (let i = 0; i < 4; i++) await (await chat(plexus.url, { model: 'gpt-x', messages: user(`keep ${i}`) })).json();
  // 0.05 pays for a few answers at (about 7 in + 3 out tokens) x the price: spend it all.
  let spent = 0;
  for (let i = 0; i < 20 && spent < 0.05; i++) {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('spend') }, { key: 'sk-ledger-capped-key' });
    if (res.status !== 200) break;
    spent += (await res.json()).usage.cost;
  }
  plexus.proc.kill('SIGTERM');
  await plexus.exited;
  plexus = await start(file);
  const mine = await get(plexus, '/v1/usage', demoKey);
  assert.equal(mine.body.data[0].requests, 4, 'a flush window of a minute, yet a clean stop wrote everything');
  const capped = await chat(plexus.url, { model: 'gpt-x', messages: user('more') }, { key: 'sk-ledger-capped-key' });
  assert.equal(capped.status, 402, 'the budget spent before the restart stays spent');
});

test('kill -9 loses at most the flush window', async () => {
  // A long window: what was not yet written is lost, and nothing else.
  const slow = await setup({ flush_ms: 60000 });
  let plexus = await start(slow.file);
  for (let i = 0; i < 3; i++) await (await chat(plexus.url, { model: 'gpt-x', messages: user(`lost ${i}`) })).json();
  await plexus.stop();  // SIGKILL
  plexus = await start(slow.file);
  assert.equal((await get(plexus, '/v1/usage', demoKey)).body.data.length, 0, 'within the window: lost, as documented');
  await plexus.stop();

  // A short window: what ended a window ago is there.
  const quick = await setup({ flush_ms: 50 });
  plexus = await start(quick.file);
  for (let i = 0; i < 3; i++) await (await chat(plexus.url, { model: 'gpt-x', messages: user(`kept ${i}`) })).json();
  await sleep(300);
  await plexus.stop();  // SIGKILL
  plexus = await start(quick.file);
  assert.equal((await get(plexus, '/v1/usage', demoKey)).body.data[0].requests, 3);
});
