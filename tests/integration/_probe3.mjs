import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { repoRoot, chat, user } from './support/plexus.mjs';
import { networkConfig, startRouter, listNodes, nodeToken, waitFor } from './support/nodes.mjs';
const def = protoLoader.loadSync(path.join(repoRoot, 'proto/plexus/node/v1/node.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
const { NodeLink } = grpc.loadPackageDefinition(def).plexus.node.v1;
const router = await startRouter(networkConfig());
const HB = process.env.HB !== '0';
function mk(name, model, onOrder, hot = true) {
  const client = new NodeLink(`127.0.0.1:${router.nodePort}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata(); md.set('authorization', `Bearer ${nodeToken}`);
  const call = client.Connect(md); call.on('error', () => {});
  const n = { call, client };
  n.ended = new Promise(r => call.on('status', r));
  let hb; n.ended.then(() => clearInterval(hb));
  n.reg = new Promise(r => call.on('data', m => {
    if (m.kind === 'registered') { call.write({ credit: { slots: 1 } }); if (HB) hb = setInterval(() => call.write({ heartbeat: {} }), 200); r(); }
    if (m.kind === 'order') onOrder(m.order, n);
  }));
  call.write({ register: { name, agent_version: 'p/1', backend: 'x', models: [{ id: model, hot }] } });
  return n;
}
const modes = {
  chunk: (o, n) => n.call.write({ chunk: { order_id: o.order_id, data: 'not json' } }),
  body: (o, n) => n.call.write({ complete: { order_id: o.order_id, body: 'not json' } }),
};
const tally = {};
for (let i = 0; i < 60; i++) for (const [m, act] of Object.entries(modes)) {
  const model = `m${i}${m}`;
  const n = mk(`b${i}${m}`, model, act);
  const sb = process.env.SB === "1" ? mk(`s${i}${m}`, model + "-other", (o, s) => { if (o.stream) { s.call.write({chunk:{order_id:o.order_id,data:JSON.stringify({id:'x',object:'chat.completion.chunk',created:1,model,choices:[{index:0,delta:{content:'ok'},finish_reason:null}]})}}); s.call.write({complete:{order_id:o.order_id,finish_reason:'stop'}}); } else s.call.write({complete:{order_id:o.order_id,body:JSON.stringify({id:'x',object:'chat.completion',created:1,model,choices:[{index:0,message:{role:'assistant',content:'ok'},finish_reason:'stop'}]})}}); }, false) : null;
  await n.reg; await sb?.reg;
  await waitFor(async () => { const l = await listNodes(router); return l.find(x => x.id === `b${i}${m}@lab`)?.capacity.free_slots === 1 && (!sb || l.find(x => x.id === `s${i}${m}@lab`)?.capacity.free_slots === 1); }, 5000, 'credit');
  const res = await chat(router.url, { model, messages: user('x'), stream: m === 'chunk' });
  const body = await res.text(); if (res.status !== 200 && sb) console.log('status', res.status, body);
  const st = await n.ended;
  const k = `${m}: ${st.code} ${st.details}`; tally[k] = (tally[k] ?? 0) + 1;
  n.client.close(); if (sb) { sb.call.cancel(); sb.client.close(); }
}
console.log(tally);
await router.stop(); process.exit(0);
