// A plugin's per-request state belongs to its request alone: with several loops (each with its
// own instance of the plugin) and many requests overlapping on each, every answer carries the
// state its own on_request stored.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { baseConfig, chat, startPlexus, user } from './support/plexus.mjs';

test('ctx.state never leaks between requests, on any loop', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-state-'));
  const script = path.join(dir, 'state.lua');
  fs.writeFileSync(script, `
function on_request(req, ctx)
  ctx.state.mine = req.user
  return plexus.CONTINUE
end
function on_complete(result, ctx)
  ctx:add_header("X-State", tostring(ctx.state.mine))
end
`);
  const plexus = await startPlexus(baseConfig(
    [{ name: 'demo', provider: 'demo', models: ['demo'], options: { first_token_ms: 20, tokens_per_second: 400 } }],
    { threads: 4, plugins: [{ name: 'state', type: 'lua', path: script }] }));
  try {
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}-${Math.random().toString(36).slice(2, 8)}`);
    const answers = await Promise.all(users.map(async (u) => {
      const r = await chat(plexus.url, { model: 'demo', user: u, max_tokens: 8, messages: user('state check') });
      await r.text();
      return [u, r.status, r.headers.get('x-state')];
    }));
    for (const [u, status, state] of answers) {
      assert.equal(status, 200);
      assert.equal(state, u, `the answer to ${u} carries ${state}`);
    }
  } finally {
    await plexus.stop();
  }
});
