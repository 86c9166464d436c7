// Keys' rate limits through the real router: requests and tokens per minute hold under
// concurrency, every answer carries OpenAI's x-ratelimit-* headers, and a refusal is a 429 with
// Retry-After.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, demoKey, startPlexus, user } from './support/plexus.mjs';

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  plexus = await startPlexus(baseConfig([{ name: 'f', provider: 'openai', url: fake.url, models: ['gpt-x'] }], {
    keys: [
      { id: 'demo', key: demoKey },
      { id: 'rpm', key: 'sk-limited-requests', rpm: 20 },
      { id: 'tpm', key: 'sk-limited-tokens', tpm: 25 },
    ],
  }));
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

// The fixed window is a clock minute: start each test well inside one.
async function freshMinute() {
  const s = new Date().getUTCSeconds();
  if (s > 50) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
}

test('requests per minute hold under 50 concurrent requests; headers say what is left', async () => {
  await freshMinute();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => chat(plexus.url, { model: 'gpt-x', messages: user(`r${i}`) }, { key: 'sk-limited-requests' })));
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 20);
  assert.equal(refused.length, 30);
  for (const r of ok) {
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '20');
    assert.match(r.headers.get('x-ratelimit-reset-requests'), /^\d+s$/);
  }
  assert.deepEqual(ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  const body = await refused[0].json();
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.ok(Number(refused[0].headers.get('retry-after')) >= 1);
  assert.equal(refused[0].headers.get('x-ratelimit-remaining-requests'), '0');
  await Promise.all(results.filter((r) => !r.bodyUsed).map((r) => r.text()));
  // Keys without limits are not limited and get no headers.
  const free = await chat(plexus.url, { model: 'gpt-x', messages: user('free') });
  assert.equal(free.status, 200);
  assert.equal(free.headers.get('x-ratelimit-limit-requests'), null);
  await free.text();
});

test('tokens per minute: once the minute\'s tokens are used, the next request is refused', async () => {
  await freshMinute();
  let served = 0;
  let tokens = 0;
  for (let i = 0; i < 10; i++) {
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user(`t${i}`) }, { key: 'sk-limited-tokens' });
    if (res.status === 429) {
      assert.equal((await res.json()).error.code, 'rate_limit_exceeded');
      assert.equal(res.headers.get('x-ratelimit-remaining-tokens'), '0');
      break;
    }
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-ratelimit-limit-tokens'), '25');
    tokens += (await res.json()).usage.total_tokens;
    served++;
  }
  assert.ok(tokens >= 25, `refused only once the tokens were used (${tokens})`);
  assert.ok(served >= 2 && served < 10, `${served} served`);
});
