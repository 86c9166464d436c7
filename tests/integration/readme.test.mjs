// The README's examples, run as written against the shipped example config (only the port
// differs: the test takes a free one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseSse, repoRoot } from './support/plexus.mjs';
import { startNode, startRouter } from './support/nodes.mjs';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const block = (lang, after) => {
  const from = readme.indexOf(after);
  const m = readme.slice(from).match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  return m[1];
};

// As ./scripts/run.sh does: the router with the example config, and a demo node beside it.
let plexus;
let node;
before(async () => {
  plexus = await startRouter(path.join(repoRoot, 'examples/plexus.json'));
  node = await startNode(plexus, {
    name: 'demo-node',
    token: 'nt-plexus-demo',
    args: ['--backend', 'demo', '--models', 'demo,demo-embed', '--embedding-models', 'demo-embed'],
  });
});
after(async () => {
  await node?.stop();
  await plexus?.stop();
});

const withPort = (s) => s.replaceAll('127.0.0.1:8080', `127.0.0.1:${plexus.port}`);

test('the README curl streams an answer from the demo node', () => {
  const curl = withPort(block('sh', '## Try it'));
  const out = execFileSync('bash', ['-c', curl], { encoding: 'utf8' });
  const events = parseSse(out);
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
  assert.ok(text.length > 10, text);
});

test('the README embeddings curl answers one unit vector per input from demo-embed', () => {
  const curl = withPort(block('sh', 'Embeddings come from'));
  const out = JSON.parse(execFileSync('bash', ['-c', curl], { encoding: 'utf8' }));
  assert.equal(out.object, 'list');
  assert.equal(out.model, 'demo-embed');
  assert.deepEqual(out.data.map((d) => d.index), [0, 1]);
  for (const { embedding } of out.data) {
    assert.ok(embedding.length > 0);
    assert.ok(Math.abs(Math.hypot(...embedding) - 1) < 1e-9, 'a unit vector');
  }
  assert.notDeepEqual(out.data[0].embedding, out.data[1].embedding);
  assert.ok(out.usage.prompt_tokens > 0);
});

test('the README OpenAI SDK snippet prints an answer', () => {
  const file = path.join(repoRoot, 'tests/integration', `.readme-snippet-${process.pid}.mjs`);
  fs.writeFileSync(file, withPort(block('js', 'With the official OpenAI SDK')));
  try {
    const out = execFileSync('node', [file], { encoding: 'utf8' });
    assert.match(out, /^[A-Z][a-zA-Z ]+/);
    assert.match(out, /\.$/);
  } finally {
    fs.unlinkSync(file);
  }
});
