import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { repoRoot, chat, user } from './support/plexus.mjs';
import { networkConfig, startRouter, listNodes, nodeToken, waitFor } from './support/nodes.mjs';
const def = protoLoader.loadSync(path.join(repoRoot, 'proto/plexus/node/v1/node.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
const { NodeLink } = grpc.loadPackageDefinition(def).plexus.node.v1;
const cfg = networkConfig(); cfg.nodes.queue_timeout_ms = 10000;
const router = await startRouter(cfg);
function mk(name, model, credit, onOrder, extra = {}) {
  const client = new NodeLink(`127.0.0.1:${router.nodePort}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata(); md.set('authorization', `Bearer ${nodeToken}`);
  const call = client.Connect(md); call.on('error', () => {});
  const n = { call, client, orders: [] };
  n.ended = new Promise(r => call.on('status', r));
  let hb;
  n.ended.then(() => clearInterval(hb));
  call.on('data', m => {
    if (m.kind === 'registered') { call.write({ credit: { slots: credit } }); hb = setInterval(() => call.write({ heartbeat: {} }), 200); }
    if (m.kind === 'order') { n.orders.push(m.order); onOrder?.(m.order, n); }
  });
  call.write({ register: { name, agent_version: 'p/1', backend: 'x', models: [{ id: model, ...extra }] } });
  return n;
}
const good = (o, n) => { const body = JSON.stringify({id:'x',object:'chat.completion',created:1,model:o.model,choices:[{index:0,message:{role:'assistant',content:'ok'},finish_reason:'stop'}]});
  if (o.stream) { n.call.write({chunk:{order_id:o.order_id,data:JSON.stringify({id:'x',object:'chat.completion.chunk',created:1,model:o.model,choices:[{index:0,delta:{content:'ok'},finish_reason:null}]})}}); n.call.write({complete:{order_id:o.order_id,finish_reason:'stop'}}); }
  else n.call.write({complete:{order_id:o.order_id,finish_reason:'stop',body}}); };
async function scenario(label, badAction, standbyCreditFirst, stream=false) {
  const model = 'm-' + label;
  let trigger; const bad = mk('bad-' + label, model, 1, (o, n) => { trigger = () => badAction(o, n); }, { hot: true });
  const sb = mk('sb-' + label, model, standbyCreditFirst === 'pre' ? 1 : 0, good, { hot: false, price_input_per_1k: 5, price_output_per_1k: 5 });
  await waitFor(async () => (await listNodes(router)).filter(x => x.id.endsWith(label + '@lab')).length === 2, 5000, 'listed');
  const pending = chat(router.url, { model, messages: user('hi'), stream });
  await waitFor(() => trigger, 5000, 'order');
  if (standbyCreditFirst) { sb.call.write({ credit: { slots: 1 } }); await waitFor(async () => (await listNodes(router)).find(x => x.id === `sb-${label}@lab`)?.capacity.free_slots === 1, 5000, 'credit'); }
  trigger();
  setTimeout(() => { if (!standbyCreditFirst) sb.call.write({ credit: { slots: 1 } }); }, 300);
  const res = await pending; const text = await res.text();
  const st = await Promise.race([bad.ended, new Promise(r => setTimeout(() => r('still open'), 500))]);
  console.log(label, 'standbyCreditFirst=' + standbyCreditFirst, 'stream=' + stream, '->', res.status, res.headers.get('x-plexus-node'), text.slice(0, 160).replace(/\n/g, ' '), '| bad status:', st.code ?? st, st.details ?? '', '| standby orders', sb.orders.length);
  bad.call.cancel(); sb.call.cancel();
}
const garbage = (o, n) => n.call.write({ chunk: { order_id: o.order_id, data: 'not json' } });
const retry = (o, n) => n.call.write({ complete: { order_id: o.order_id, error: { status: 503, message: 'busy', code: 'x', retryable: true } } });
const disconnect = (o, n) => n.call.cancel();
const halfclose = (o, n) => n.call.end();
for (const [l, a] of [['garbage', garbage], ['retryable', retry], ['disconnect', disconnect], ['halfclose', halfclose]])
  for (const first of ['pre']) for (const stream of [false, true]) await scenario(`${l}-${first ? 'c' : 'n'}-${stream ? 's' : 'w'}`, a, first, stream);
await router.stop(); process.exit(0);
