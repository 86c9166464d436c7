// Routing on live statistics through the real router: the circuit breaker's cycle against a
// backend that breaks and heals, the latency policy finding the faster node, the client's region,
// and what the answer says about the attempts.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, startPlexus, user } from './support/plexus.mjs';
import { adminKey, waitFor } from './support/nodes.mjs';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

const keys = [
  { id: 'demo', key: demoKey },
  { id: 'admin', key: adminKey, admin: true },
  { id: 'rr', key: 'sk-round-robin-key', routing_policy: 'round_robin' },
  { id: 'fast', key: 'sk-latency-key', routing_policy: 'latency' },
];

async function modelStats(plexus, node) {
  const res = await fetch(`${plexus.url}/v1/nodes`, { headers: { authorization: `Bearer ${adminKey}` } });
  const entry = (await res.json()).data.find((n) => n.id === node);
  return entry.models[0].stats;
}

test('a breaking backend opens its breaker, gets one probe after the cooldown, and closes it once healed', async () => {
  const flaky = await startFakeOpenAI({ name: 'flaky' });
  const steady = await startFakeOpenAI({ name: 'steady' });
  cleanup.push(() => flaky.close(), () => steady.close());
  const plexus = await startPlexus(baseConfig([
    { name: 'flaky', provider: 'openai', url: flaky.url, models: ['gpt-x'] },
    { name: 'steady', provider: 'openai', url: steady.url, models: ['gpt-x'] },
  ], { keys, routing: { breaker: { consecutive_failures: 2, cooldown_ms: 400 } } }));
  cleanup.push(() => plexus.stop());
  const ask = () => chat(plexus.url, { model: 'gpt-x', messages: user('hi') }, { key: 'sk-round-robin-key' });

  flaky.state.failing = true;
  const attempts = [];
  for (let i = 0; i < 10; i++) {
    const res = await ask();
    assert.equal(res.status, 200, 'every request is answered: the failed ones by the other node');
    assert.equal(res.headers.get('x-plexus-node'), 'steady');
    attempts.push(Number(res.headers.get('x-plexus-attempts')));
    await res.text();
  }
  assert.equal(flaky.state.requests.length, 2, 'two failures in a row open the breaker: no third request reaches it');
  assert.equal(attempts.filter((a) => a === 2).length, 2, 'the two that met the broken node took two attempts');
  assert.equal((await modelStats(plexus, 'flaky')).breaker, 'open');

  // Still broken after the cooldown: one probe, which fails, and the breaker opens again.
  await waitFor(async () => (await modelStats(plexus, 'flaky')).breaker === 'half_open', 5000, 'half-open');
  for (let i = 0; i < 4; i++) await (await ask()).text();
  assert.equal(flaky.state.requests.length, 3, 'exactly one probe');
  assert.equal((await modelStats(plexus, 'flaky')).breaker, 'open');

  // Healed: after the next cooldown the probe succeeds and traffic comes back.
  flaky.state.failing = false;
  await waitFor(async () => (await modelStats(plexus, 'flaky')).breaker === 'half_open', 5000, 'half-open again');
  const served = new Set();
  for (let i = 0; i < 6; i++) {
    const res = await ask();
    served.add(res.headers.get('x-plexus-node'));
    await res.text();
  }
  assert.deepEqual([...served].sort(), ['flaky', 'steady'], 'round robin reaches both again');
  assert.equal((await modelStats(plexus, 'flaky')).breaker, 'closed');
});

test('every breaker open: 503 nodes_cooling_down at once, without calling the backend', async () => {
  const broken = await startFakeOpenAI({ name: 'broken' });
  cleanup.push(() => broken.close());
  const plexus = await startPlexus(baseConfig([{ name: 'only', provider: 'openai', url: broken.url, models: ['gpt-x'] }],
    { keys, routing: { breaker: { consecutive_failures: 1, cooldown_ms: 60000 } } }));
  cleanup.push(() => plexus.stop());
  broken.state.failing = true;
  const first = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(first.status, 502);
  const second = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(second.status, 503);
  assert.equal((await second.json()).error.code, 'nodes_cooling_down');
  assert.equal(broken.state.requests.length, 1);
});

test('the latency policy sends traffic to the faster node once it has seen both', async () => {
  const plexus = await startPlexus(baseConfig([
    { name: 'sluggish', provider: 'demo', models: ['demo'], options: { first_token_ms: 60, tokens_per_second: 100000 } },
    { name: 'quick', provider: 'demo', models: ['demo'], options: { first_token_ms: 0, tokens_per_second: 100000 } },
  ], { keys }));
  cleanup.push(() => plexus.stop());
  const ask = async () => {
    const res = await chat(plexus.url, { model: 'demo', messages: user('hi'), max_tokens: 2 }, { key: 'sk-latency-key' });
    await res.text();
    return res.headers.get('x-plexus-node');
  };
  const seen = new Set();
  for (let i = 0; i < 6; i++) seen.add(await ask());  // both get measured (an unknown node counts as the best known)
  assert.ok(seen.has('sluggish') && seen.has('quick'), [...seen].join());
  for (let i = 0; i < 10; i++) assert.equal(await ask(), 'quick');
});

test("the client's region comes first: the key's, or the request's x-plexus-region", async () => {
  const plexus = await startPlexus(baseConfig([
    { name: 'us-node', provider: 'demo', models: ['demo'], region: 'us-east', options: { first_token_ms: 0, tokens_per_second: 100000 } },
    { name: 'eu-node', provider: 'demo', models: ['demo'], region: 'eu-west', options: { first_token_ms: 0, tokens_per_second: 100000 } },
  ], { keys: [...keys, { id: 'eu', key: 'sk-european-key', routing_policy: 'least_loaded', region: 'eu-west' }] }));
  cleanup.push(() => plexus.stop());
  const node = async (key, headers = {}) => {
    const res = await chat(plexus.url, { model: 'demo', messages: user('hi'), max_tokens: 1 }, { key, headers });
    await res.text();
    return res.headers.get('x-plexus-node');
  };
  for (let i = 0; i < 3; i++) assert.equal(await node('sk-european-key'), 'eu-node');
  for (let i = 0; i < 3; i++) assert.equal(await node('sk-european-key', { 'x-plexus-region': 'us-east' }), 'us-node');
});

test('an alias the operator declares reaches the model it means, and /v1/models lists it', async () => {
  const plexus = await startPlexus(baseConfig([
    { name: 'llama-node', provider: 'demo', models: ['llama-3.1-8b'], options: { first_token_ms: 0, tokens_per_second: 100000 } },
  ], { keys, routing: { aliases: { 'gpt-4o-mini': 'llama-3.1-8b', 'unreachable': 'nobody-serves-this' } } }));
  cleanup.push(() => plexus.stop());
  const res = await chat(plexus.url, { model: 'gpt-4o-mini', messages: user('hi'), max_tokens: 2 });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'llama-node');
  await res.text();
  const models = await (await fetch(`${plexus.url}/v1/models`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['gpt-4o-mini', 'llama-3.1-8b']);
});

test("OpenRouter's hints: models falls back, provider narrows, orders, sorts and caps the price", async () => {
  const cheap = await startFakeOpenAI({ name: 'cheap' });
  const dear = await startFakeOpenAI({ name: 'dear' });
  cleanup.push(() => cheap.close(), () => dear.close());
  const plexus = await startPlexus(baseConfig([
    { name: 'dear-node', provider: 'openai', url: dear.url, models: ['gpt-x'], price: { input_per_1k: 2, output_per_1k: 4 } },
    { name: 'cheap-node', provider: 'openai', url: cheap.url, models: ['gpt-x'], price: { input_per_1k: 0.1, output_per_1k: 0.2 } },
  ], { keys }));
  cleanup.push(() => plexus.stop());
  const ask = async (extra) => {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), ...extra });
    return { status: res.status, node: res.headers.get('x-plexus-node'), model: res.headers.get('x-plexus-model'), body: await res.json() };
  };

  const fallback = await ask({ model: 'no-such-model', models: ['also-missing', 'gpt-x'] });
  assert.equal(fallback.status, 200);
  assert.equal(fallback.model, 'gpt-x');
  assert.equal((await ask({ provider: { only: ['cheap-node'] } })).node, 'cheap-node');
  assert.equal((await ask({ provider: { ignore: ['dear-node'] } })).node, 'cheap-node');
  assert.equal((await ask({ provider: { order: ['cheap-node', 'dear-node'] } })).node, 'cheap-node');
  assert.equal((await ask({ provider: { sort: 'price' } })).node, 'cheap-node');
  const capped = await ask({ provider: { only: ['dear-node'], max_price: { prompt: 1 } } });
  assert.equal(capped.status, 400, 'max_price refuses rather than overspends');
  assert.equal(capped.body.error.param, 'provider.max_price');

  // Only the order's nodes, without fallbacks: the one listed is broken, so the request fails.
  cheap.state.failing = true;
  const strict = await ask({ provider: { order: ['cheap-node'], allow_fallbacks: false } });
  assert.equal(strict.status, 502);
  cheap.state.failing = false;

  // Hints are the router's business: the backend never sees them.
  for (const r of [...cheap.state.requests, ...dear.state.requests]) {
    assert.equal(r.body.provider, undefined);
    assert.equal(r.body.models, undefined);
  }
  for (const [extra, param] of [[{ models: 'gpt-x' }, 'models'], [{ provider: { sort: 'fastest' } }, 'provider.sort'],
    [{ provider: { only: [1] } }, 'provider.only'], [{ provider: { max_price: { prompt: -1 } } }, 'provider.max_price.prompt'],
    [{ provider: { allow_fallbacks: 'no' } }, 'provider.allow_fallbacks']]) {
    const bad = await ask(extra);
    assert.equal(bad.status, 400, JSON.stringify(extra));
    assert.equal(bad.body.error.param, param);
  }
});

test('prefix affinity: requests sharing a long prompt prefix go to the node that served it, until it is saturated', async () => {
  const upstreams = [
    { name: 'one', provider: 'demo', models: ['demo'], options: { first_token_ms: 0, tokens_per_second: 100000 } },
    { name: 'two', provider: 'demo', models: ['demo'], options: { first_token_ms: 0, tokens_per_second: 100000 } },
  ];
  const system = { role: 'system', content: `You are a careful assistant. ${'Follow the house style guide. '.repeat(60)}` };
  const served = async (plexus, messages) => {
    const res = await chat(plexus.url, { model: 'demo', messages, max_tokens: 1 }, { key: 'sk-round-robin-key' });
    await res.text();
    return res.headers.get('x-plexus-node');
  };

  const sticky = await startPlexus(baseConfig(upstreams, { keys }));
  cleanup.push(() => sticky.stop());
  const first = await served(sticky, [system, { role: 'user', content: 'question 0' }]);
  for (let i = 1; i < 8; i++) assert.equal(await served(sticky, [system, { role: 'user', content: `question ${i}` }]), first);
  // The same conversation, one turn further: still there.
  assert.equal(await served(sticky, [system, { role: 'user', content: 'question 0' }, { role: 'assistant', content: 'answer' },
    { role: 'user', content: 'and then?' }]), first);
  // A short prompt has no prefix worth keeping: round robin as usual.
  const short = new Set();
  for (let i = 0; i < 4; i++) short.add(await served(sticky, [{ role: 'user', content: `hi ${i}` }]));
  assert.equal(short.size, 2);

  const spread = await startPlexus(baseConfig(upstreams, { keys, routing: { prefix_affinity: { enabled: false } } }));
  cleanup.push(() => spread.stop());
  const seen = new Set();
  for (let i = 0; i < 4; i++) seen.add(await served(spread, [system, { role: 'user', content: `question ${i}` }]));
  assert.equal(seen.size, 2, 'without affinity, round robin spreads them');
});

test('group isolation holds under every policy, hints included', async () => {
  const policies = ['balanced', 'latency', 'price', 'throughput', 'least_loaded', 'round_robin', 'auction'];
  const plexus = await startPlexus(baseConfig([
    { name: 'theirs', provider: 'demo', models: ['demo'], group: 'b', price: { input_per_1k: 0, output_per_1k: 0 }, options: { first_token_ms: 0, tokens_per_second: 100000 } },
    { name: 'ours', provider: 'demo', models: ['demo'], group: 'a', price: { input_per_1k: 5, output_per_1k: 5 }, options: { first_token_ms: 5, tokens_per_second: 100000 } },
  ], { keys: policies.map((p) => ({ id: p, key: `sk-group-a-${p}`, group: 'a', routing_policy: p })) }));
  cleanup.push(() => plexus.stop());
  for (const p of policies) {
    for (let i = 0; i < 5; i++) {
      const res = await chat(plexus.url, { model: 'demo', messages: user('hi'), max_tokens: 1, provider: { order: ['theirs'] } },
        { key: `sk-group-a-${p}` });
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get('x-plexus-node'), 'ours', `${p}: a cheaper, faster node of another group is never used`);
      await res.text();
    }
  }
});

test('failover is bounded: at most 16 attempts, then the last error', async () => {
  const broken = await startFakeOpenAI({ name: 'broken' });
  cleanup.push(() => broken.close());
  broken.state.failing = true;
  const upstreams = Array.from({ length: 20 }, (_, i) => ({ name: `n${i}`, provider: 'openai', url: broken.url, models: ['gpt-x'] }));
  const plexus = await startPlexus(baseConfig(upstreams, { keys }));
  cleanup.push(() => plexus.stop());
  const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi') });
  assert.equal(res.status, 502);
  assert.equal(res.headers.get('x-plexus-attempts'), '16');
  assert.equal(broken.state.requests.length, 16);
});

test('a Lua policy from examples/policies drives real traffic: the cheapest node within its P95 bound', async () => {
  const { repoRoot } = await import('./support/plexus.mjs');
  const plexus = await startPlexus(baseConfig([
    { name: 'cheap-slow', provider: 'demo', models: ['demo'], price: { input_per_1k: 0.1, output_per_1k: 0.1 }, options: { first_token_ms: 150, tokens_per_second: 100000 } },
    { name: 'dear-fast', provider: 'demo', models: ['demo'], price: { input_per_1k: 1, output_per_1k: 1 }, options: { first_token_ms: 0, tokens_per_second: 100000 } },
    { name: 'mid-fast', provider: 'demo', models: ['demo'], price: { input_per_1k: 0.5, output_per_1k: 0.5 }, options: { first_token_ms: 0, tokens_per_second: 100000 } },
  ], {
    keys,
    plugins: [{ name: 'cheapest', type: 'lua', path: `${repoRoot}/examples/policies/cheapest_within_p95.lua`, config: { max_p95_ms: 100 } }],
  }));
  cleanup.push(() => plexus.stop());
  const served = async () => {
    const res = await chat(plexus.url, { model: 'demo', messages: user('hi'), max_tokens: 1 });
    await res.text();
    return res.headers.get('x-plexus-node');
  };
  // Unmeasured, the cheapest counts as within the bound and is tried; measured above 100 ms, it
  // is passed over for the cheapest of those within it.
  assert.equal(await served(), 'cheap-slow');
  const later = [];
  for (let i = 0; i < 6; i++) later.push(await served());
  assert.equal(later.at(-1), 'mid-fast');
  assert.ok(!later.slice(-3).includes('cheap-slow'), later.join());
});
