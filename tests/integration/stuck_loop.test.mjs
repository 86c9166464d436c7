// A loop held by a plugin that does not return is visible: /readyz (answered by another loop)
// turns 503 naming the plugin, the log says which loop and plugin, and everything recovers once
// the hook returns. Native hooks can do this; Lua hooks cannot (their budget is uncatchable).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { baseConfig, chat, repoRoot, startPlexus, user } from './support/plexus.mjs';
import { connect, json, request, splitResponses } from './support/raw_http.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function readyz(port) {
  const conn = await connect(port);  // a new connection: the kernel hands it to a waiting loop
  await conn.write(request('GET', '/readyz'));
  await conn.waitFor((d) => splitResponses(d).length >= 1, 2000);
  conn.destroy();
  const [r] = splitResponses(conn.data());
  return r;
}

test('a native hook blocking its loop turns /readyz 503 with the plugin named, is logged, and the router recovers', async () => {
  const plexus = await startPlexus(baseConfig(
    [{ name: 'demo', provider: 'demo', models: ['demo', 'stuck'], options: { first_token_ms: 1, tokens_per_second: 1000 } }],
    {
      threads: 2,  // one loop gets stuck, the other answers
      plugins: [{ name: 'blocker', type: 'native', path: path.join(pluginDir, 'libplexus_test_misbehaving.so'),
                  config: { block_ms: 4000, model: 'stuck' } }],
    }));
  try {
    assert.equal((await readyz(plexus.port)).status, 200, 'ready before');
    const held = chat(plexus.url, { model: 'stuck', messages: user('hold the loop') });
    await sleep(2600);
    const during = await readyz(plexus.port);
    assert.equal(during.status, 503);
    const body = json(during);
    assert.equal(body.status, 'stuck');
    assert.equal(body.busy_with, 'blocker');
    assert.ok(body.busy_seconds >= 2);
    const logged = /loop \d has been busy for [\d.]+ s in one turn \(plugin 'blocker'\)/;
    for (let i = 0; i < 20 && !logged.test(plexus.stderr()); i++) await sleep(100);  // checked once a second
    assert.match(plexus.stderr(), logged);

    const answer = await held;  // the hook returns; the request completes normally
    assert.equal(answer.status, 200);
    assert.equal((await readyz(plexus.port)).status, 200, 'ready again');
    const after = await chat(plexus.url, { model: 'demo', messages: user('and on') });
    assert.equal(after.status, 200);
  } finally {
    await plexus.stop();
  }
});
