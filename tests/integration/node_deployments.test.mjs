// Deployments: the router says which models a group's nodes should offer; a node whose backend
// can fetch models (Ollama) pulls the missing one with streamed progress and then serves it; one
// that cannot (llama.cpp) says so and keeps serving what it has.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startFakeLlamaCpp } from './support/fake_llamacpp.mjs';
import { startFakeOllama } from './support/fake_ollama.mjs';
import { chat, user } from './support/plexus.mjs';
import { listNodes, networkConfig, startNode, startRouter, waitFor } from './support/nodes.mjs';

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

const config = () => networkConfig({ deployments: [{ model: 'qwen2.5:7b', group: 'public', min_nodes: 1 }] });

test('an Ollama node pulls a deployed model it lacks, reports progress, then serves it', async () => {
  const ollama = await startFakeOllama({ pulled: ['llama3.2:latest'], loaded: ['llama3.2:latest'], pullable: ['qwen2.5:7b'] });
  cleanup.push(() => ollama.close());
  const router = await startRouter(config());
  cleanup.push(() => router.stop());
  const node = await startNode(router, { name: 'puller', args: ['--backend', ollama.url] });
  cleanup.push(() => node.stop());

  // While the fake streams its progress lines, the node's heartbeats say how far it got.
  const seen = new Set();
  const final = await waitFor(async () => {
    const [entry] = await listNodes(router);
    const dep = entry?.deployments?.find((d) => d.model === 'qwen2.5:7b');
    if (dep?.state === 'pulling' && dep.progress > 0 && dep.progress < 1) seen.add('pulling');
    return dep?.state === 'loaded' && entry.models.some((m) => m.id === 'qwen2.5:7b') ? entry : null;
  }, 15000, 'the deployment to load');
  assert.ok(seen.has('pulling'), 'progress was reported while pulling');
  assert.deepEqual(ollama.state.pulls.map((p) => [p.model, p.stream]), [['qwen2.5:7b', true]]);
  assert.deepEqual(final.models.map((m) => m.id).sort(), ['llama3.2:latest', 'qwen2.5:7b']);

  const res = await chat(router.url, { model: 'qwen2.5:7b', messages: user('hi') });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'puller@lab');
  assert.equal((await res.json()).choices[0].message.content, 'Hello from ollama');
});

test('a failed pull is reported with the backend\'s reason; the node keeps serving', async () => {
  const ollama = await startFakeOllama({ pulled: ['llama3.2:latest'], loaded: ['llama3.2:latest'], pullable: [] });
  cleanup.push(() => ollama.close());
  const router = await startRouter(config());
  cleanup.push(() => router.stop());
  const node = await startNode(router, { name: 'unlucky', args: ['--backend', ollama.url] });
  cleanup.push(() => node.stop());
  const dep = await waitFor(async () => {
    const d = (await listNodes(router))[0]?.deployments?.find((x) => x.model === 'qwen2.5:7b');
    return d?.state === 'failed' ? d : null;
  }, 10000, 'the failure');
  assert.match(dep.detail, /file does not exist/);
  const res = await chat(router.url, { model: 'llama3.2:latest', messages: user('hi') });
  assert.equal(res.status, 200);
});

test('a llama.cpp node cannot fetch models: it says so and keeps serving its own', async () => {
  const llama = await startFakeLlamaCpp();
  cleanup.push(() => llama.close());
  const router = await startRouter(config());
  cleanup.push(() => router.stop());
  const node = await startNode(router, { name: 'fixed', args: ['--backend', llama.url] });
  cleanup.push(() => node.stop());
  const entry = await waitFor(async () => {
    const [e] = await listNodes(router);
    return e?.deployments?.some((d) => d.model === 'qwen2.5:7b') ? e : null;
  }, 10000, 'the deployment report');
  const dep = entry.deployments.find((d) => d.model === 'qwen2.5:7b');
  assert.equal(dep.state, 'unsupported');
  assert.match(dep.detail, /cannot fetch models/);
  const model = entry.models[0].id;
  const res = await chat(router.url, { model, messages: user('hi') });
  assert.equal(res.status, 200);
  const missing = await chat(router.url, { model: 'qwen2.5:7b', messages: user('hi') });
  assert.equal(missing.status, 404);
});
