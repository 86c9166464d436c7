// A third-party node: a minimal Plexus node written in JavaScript from docs/node-protocol.md and
// proto/plexus/node/v1/node.proto alone (@grpc/grpc-js and @grpc/proto-loader), serving real
// requests through the real router: registration, credit, heartbeats, streamed and whole orders,
// cancellation, and the router's refusals (bad tokens, garbage answers).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { adminKey, listNodes, networkConfig, nodeToken, startRouter, waitFor } from './support/nodes.mjs';
import { chat, demoKey, parseSse, repoRoot, sseEvents, user } from './support/plexus.mjs';

const definition = protoLoader.loadSync(path.join(repoRoot, 'proto/plexus/node/v1/node.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { NodeLink } = grpc.loadPackageDefinition(definition).plexus.node.v1;

const echoModel = { id: 'js-echo', hot: true, context_length: 4096, price_input_per_1k: 0.5, price_output_per_1k: 1.5 };

// ------------------------------------------------------------------------------- the node

const lastUserMessage = (body) => {
  const content = body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  return typeof content === 'string' ? content : content.map((p) => p.text ?? '').join('');
};
const countWords = (text) => text.split(/\s+/).filter(Boolean).length;
const replyTo = (prompt) => `You said: ${prompt}`;

// Connects, registers and serves until closed. `mode` decides how orders are answered: 'echo'
// (the default), 'garbage-first' (a chunk that is not JSON, before any other), 'garbage-body' (a
// whole order's body that is not JSON), 'garbage-later' (one valid chunk at once, then the garbage
// chunk when the test calls `node.sendGarbage()`). In 'echo', a prompt of "slow" streams a chunk
// every 50 ms until cancelled.
function startJsNode(router, { name = 'js-node', token = nodeToken, models = [echoModel], credit = 2, mode = 'echo' } = {}) {
  const client = new NodeLink(`127.0.0.1:${router.nodePort}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const call = client.Connect(metadata);
  const node = { name, client, call, orders: [], cancels: [], active: new Map(), closed: false };
  const send = (message) => {
    if (!node.closed) call.write(message);
  };
  node.send = send;
  let heartbeat;
  node.ended = new Promise((resolve) =>
    call.on('status', (status) => {
      node.closed = true;
      clearInterval(heartbeat);
      for (const order of node.active.values()) clearInterval(order.timer);
      resolve(status);
    }),
  );
  call.on('error', () => {}); // the status above carries it
  node.registered = new Promise((resolve, reject) => {
    node.ended.then((s) => reject(new Error(`the call ended before Registered: ${s.code} ${s.details}`)));
    call.on('data', (message) => {
      if (message.kind === 'registered') {
        node.info = message.registered;
        send({ credit: { slots: credit } });
        heartbeat = setInterval(() => send({ heartbeat: { in_flight: node.active.size } }), message.registered.heartbeat_interval_ms);
        resolve(message.registered);
      } else if (message.kind === 'order') {
        node.orders.push(message.order);
        serve(node, message.order, mode);
      } else if (message.kind === 'cancel') {
        node.cancels.push(message.cancel);
        const order = node.active.get(message.cancel.order_id);
        if (!order) return;
        clearInterval(order.timer);
        node.active.delete(message.cancel.order_id);
        send({ complete: { order_id: message.cancel.order_id, error: { status: 499, message: `cancelled: ${message.cancel.reason}`, code: 'cancelled' } } });
        send({ credit: { slots: 1 } });
      }
    });
  });
  node.registered.catch(() => {});
  call.write({
    register: { name, region: 'test', agent_version: 'js-test-node/1', backend: 'echo', models, max_concurrency: credit },
  });
  node.close = async () => {
    if (!node.closed) call.cancel();
    await node.ended;
    client.close();
  };
  return node;
}

function serve(node, order, mode) {
  const body = JSON.parse(order.body);
  const prompt = lastUserMessage(body);
  const id = `chatcmpl-js-${order.order_id}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta, finish_reason = null) =>
    JSON.stringify({ id, object: 'chat.completion.chunk', created, model: order.model, choices: [{ index: 0, delta, finish_reason }] });
  const usage = { prompt_tokens: countWords(body.messages.map((m) => m.content).join(' ')), completion_tokens: countWords(replyTo(prompt)), known: true };
  const active = { timer: null };
  node.active.set(order.order_id, active);
  const { known, ...counts } = usage;
  const openaiUsage = { ...counts, total_tokens: counts.prompt_tokens + counts.completion_tokens };
  const finish = (whole = '') => {
    node.active.delete(order.order_id);
    node.send({ complete: { order_id: order.order_id, usage, finish_reason: 'stop', body: whole } });
    node.send({ credit: { slots: 1 } });
  };
  const send = (data) => node.send({ chunk: { order_id: order.order_id, data } });

  if (mode === 'garbage-first') return send('not json');
  if (mode === 'garbage-body') return node.send({ complete: { order_id: order.order_id, usage, finish_reason: 'stop', body: 'not json' } });
  if (mode === 'garbage-later') {
    send(chunk({ role: 'assistant', content: 'partial ' }));
    node.sendGarbage = () => send('not json');
    return;
  }
  if (!order.stream) {
    const message = { role: 'assistant', content: replyTo(prompt) };
    return finish(JSON.stringify({ id, object: 'chat.completion', created, model: order.model, choices: [{ index: 0, message, finish_reason: 'stop' }], usage: openaiUsage }));
  }
  send(chunk({ role: 'assistant', content: '' }));
  if (prompt === 'slow') {
    let ticks = 0;
    active.timer = setInterval(() => {
      if (++ticks > 1000) {
        clearInterval(active.timer);
        return finish();
      }
      send(chunk({ content: 'tick ' }));
    }, 50);
    return;
  }
  for (const word of replyTo(prompt).split(/(?<= )/)) send(chunk({ content: word }));
  send(chunk({}, 'stop'));
  if (order.include_usage) send(JSON.stringify({ id, object: 'chat.completion.chunk', created, model: order.model, choices: [], usage: openaiUsage }));
  finish();
}

// ------------------------------------------------------------------------------- the tests

let router, node;
const extraNodes = [];
const started = (n) => (extraNodes.push(n), n);

before(async () => {
  router = await startRouter(networkConfig());
  node = startJsNode(router);
  await node.registered;
});
after(async () => {
  for (const n of extraNodes) await n.close();
  await node?.close();
  await router?.stop();
});

const nodeById = async (id) => (await listNodes(router)).find((n) => n.id === id);

test('the node registers: Registered carries its id and timings; /v1/nodes and /v1/models show it', async () => {
  assert.equal(node.info.node_id, 'js-node@lab');
  assert.equal(node.info.heartbeat_interval_ms, 200);
  assert.equal(node.info.liveness_timeout_ms, 800);
  assert.deepEqual(node.info.groups, ['public']);
  assert.ok(node.info.max_message_bytes > 0);

  const listed = await waitFor(() => nodeById('js-node@lab'), 5000, 'js-node in /v1/nodes');
  assert.equal(listed.kind, 'pull');
  assert.equal(listed.name, 'js-node');
  assert.equal(listed.agent, 'js-test-node/1');
  assert.equal(listed.backend, 'echo');
  assert.equal(listed.models.length, 1);
  assert.equal(listed.models[0].id, 'js-echo');
  assert.equal(listed.models[0].hot, true);
  assert.equal(listed.models[0].context_length, 4096);
  assert.deepEqual(listed.models[0].price, { input_per_1k: 0.5, output_per_1k: 1.5 });

  const models = await (await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  assert.ok(models.data.some((m) => m.id === 'js-echo'), JSON.stringify(models));

  // The node list is for admins.
  const refused = await fetch(`${router.url}/v1/nodes`, { headers: { authorization: `Bearer ${demoKey}` } });
  assert.notEqual(refused.status, 200);
  await refused.text();
});

test('a whole request is served by the node: its body, its usage, its name in x-plexus-node', async () => {
  const before = node.orders.length;
  const res = await chat(router.url, { model: 'js-echo', messages: user('hello there'), x_passthrough: { kept: true } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'js-node@lab');
  const body = await res.json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'You said: hello there');
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.deepEqual(body.usage, { prompt_tokens: 2, completion_tokens: 4, total_tokens: 6, cost: (2 * 0.5 + 4 * 1.5) / 1000 });

  // What the node was sent: one whole order for its model, the client's body with unknown fields kept.
  assert.equal(node.orders.length, before + 1);
  const order = node.orders.at(-1);
  assert.equal(order.model, 'js-echo');
  assert.equal(order.stream, false);
  const sent = JSON.parse(order.body);
  assert.equal(sent.model, 'js-echo');
  assert.deepEqual(sent.messages, user('hello there'));
  assert.deepEqual(sent.x_passthrough, { kept: true });
});

test('a streamed request relays the node\'s chunks in order, then [DONE]', async () => {
  const res = await chat(router.url, { model: 'js-echo', messages: user('stream me please'), stream: true, stream_options: { include_usage: true } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'js-node@lab');
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  const order = node.orders.at(-1);
  assert.equal(order.stream, true);
  assert.equal(order.include_usage, true);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, `chatcmpl-js-${order.order_id}`);
  }
  const deltas = chunks.flatMap((c) => c.choices).map((c) => c.delta.content ?? '');
  assert.deepEqual(deltas, ['', 'You ', 'said: ', 'stream ', 'me ', 'please', '']);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const withFinish = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(withFinish.length, 1);
  assert.equal(withFinish[0].choices[0].finish_reason, 'stop');
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, cost: (3 * 0.5 + 5 * 1.5) / 1000 });
});

test('a client that leaves mid-stream makes the router Cancel that order on the node', async () => {
  const controller = new AbortController();
  const res = await chat(router.url, { model: 'js-echo', messages: user('slow'), stream: true }, { signal: controller.signal });
  assert.equal(res.status, 200);
  const order = node.orders.at(-1);
  assert.equal(JSON.parse(order.body).messages[0].content, 'slow');
  const reader = res.body.getReader();
  let got = '';
  while (!got.includes('tick')) got += new TextDecoder().decode((await reader.read()).value);
  controller.abort();

  const cancel = await waitFor(() => node.cancels.find((c) => c.order_id === order.order_id), 5000, 'Cancel for the slow order');
  assert.equal(typeof cancel.reason, 'string');
  assert.equal(node.active.has(order.order_id), false, 'the node stopped the order');

  // The node completed it and gave the slot back: the router holds its full credit again, and the
  // next request is served.
  await waitFor(async () => {
    const n = await nodeById('js-node@lab');
    return n.capacity.free_slots === 2 && n.in_flight === 0;
  }, 5000, 'the credit back after the cancel');
  const next = await chat(router.url, { model: 'js-echo', messages: user('after the cancel') });
  assert.equal(next.status, 200);
  assert.equal((await next.json()).choices[0].message.content, 'You said: after the cancel');
});

test('a wrong node token, or an API key, is refused with UNAUTHENTICATED', async () => {
  for (const token of ['nt-wrong-token', demoKey, adminKey]) {
    const intruder = started(startJsNode(router, { name: 'js-intruder', token }));
    const status = await intruder.ended;
    assert.equal(status.code, grpc.status.UNAUTHENTICATED, `token ${token}: ${status.code} ${status.details}`);
    await assert.rejects(intruder.registered);
    assert.equal(intruder.orders.length, 0);
  }
  assert.equal(await nodeById('js-intruder@lab'), undefined);
});

// A node that answers with garbage is cut off with INVALID_ARGUMENT and leaves /v1/nodes. A
// standby serves the same model, also with credit, but its model is cold: routing prefers the
// bad node's hot one, so the order goes there first and the router has somewhere to move it.
async function garbageNode(name, mode, model) {
  const bad = started(startJsNode(router, { name, mode, models: [{ ...echoModel, id: model }], credit: 1 }));
  const standby = started(startJsNode(router, { name: `${name}-standby`, models: [{ ...echoModel, id: model, hot: false }], credit: 1 }));
  await Promise.all([bad.registered, standby.registered]);
  await waitFor(async () => {
    const nodes = await listNodes(router);
    return [`${name}@lab`, `${name}-standby@lab`].every((id) => nodes.find((n) => n.id === id)?.capacity.free_slots === 1);
  }, 5000, 'both nodes listed with their credit');
  return { bad, standby };
}

async function assertCutOff(bad) {
  const status = await bad.ended;
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT, `cut off with INVALID_ARGUMENT naming the rule; the call ended with ${status.code} "${status.details}"`);
  assert.ok(status.details.length > 0, 'the rule is named');
  await waitFor(async () => (await nodeById(`${bad.name}@lab`)) === undefined, 5000, `${bad.name} to leave /v1/nodes`);
}

test('garbage as the first chunk: the node is cut off and the order moves to another node', async () => {
  const { bad, standby } = await garbageNode('js-bad-first', 'garbage-first', 'js-moved');
  const res = await chat(router.url, { model: 'js-moved', messages: user('moved along'), stream: true });
  await assertCutOff(bad);
  assert.equal(bad.orders.length, 1);
  // Nothing had reached the client: the order went to the standby.
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'js-bad-first-standby@lab');
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'You said: moved along');
  assert.equal(standby.orders.length, 1);
  assert.equal(JSON.parse(standby.orders[0].body).messages[0].content, 'moved along');
});

test('garbage as a whole order\'s body: the node is cut off and the order moves to another node', async () => {
  const { bad, standby } = await garbageNode('js-bad-body', 'garbage-body', 'js-moved-whole');
  const res = await chat(router.url, { model: 'js-moved-whole', messages: user('whole again') });
  await assertCutOff(bad);
  assert.equal(bad.orders.length, 1);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'js-bad-body-standby@lab');
  assert.equal((await res.json()).choices[0].message.content, 'You said: whole again');
});

test('garbage after a valid chunk: the node is cut off and the stream ends with an error event and [DONE]', async () => {
  const { bad, standby } = await garbageNode('js-bad-later', 'garbage-later', 'js-half');
  const res = await chat(router.url, { model: 'js-half', messages: user('half way'), stream: true });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'js-bad-later@lab');
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes('partial')) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before its first chunk: ${text}`);
    text += new TextDecoder().decode(value);
  }
  bad.sendGarbage(); // only now: the first chunk has reached the client
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await assertCutOff(bad);
  const events = parseSse(text);
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(JSON.parse(events[0]).choices[0].delta.content, 'partial ');
  const error = JSON.parse(events.at(-2));
  assert.ok(error.error, `an error event before [DONE]: ${events.at(-2)}`);
  assert.equal(typeof error.error.message, 'string');
  assert.equal(standby.orders.length, 0, 'output had reached the client: the order is not moved');
});
