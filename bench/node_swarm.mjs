// Simulated nodes for the registry benchmark: N nodes register over the node protocol and
// heartbeat (with a GPU reading) until killed. Several streams share a channel, as nodes behind
// one NAT would not, but the router's registry and session work per node is the same.
//   node bench/node_swarm.mjs HOST:PORT TOKEN NODES [CHANNELS]     (prints "ready N" once all joined)
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [address, token, count = '1000', channelCount = '50'] = process.argv.slice(2);
const definition = loader.loadSync(path.join(here, '../proto/plexus/node/v1/node.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
const { NodeLink } = grpc.loadPackageDefinition(definition).plexus.node.v1;
const channels = Array.from({ length: Number(channelCount) }, () => new NodeLink(address, grpc.credentials.createInsecure()));

let joined = 0;
const gpu = { index: 0, name: 'Simulated GPU', utilization_percent: 42, memory_used_mib: 1000, memory_total_mib: 24000, temperature_c: 55 };
for (let i = 0; i < Number(count); i++) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const call = channels[i % channels.length].Connect(metadata);
  call.on('error', (e) => { console.error(`node ${i}: ${e.message}`); process.exit(1); });
  call.on('data', (m) => {
    if (m.kind !== 'registered') return;
    if (++joined === Number(count)) console.log(`ready ${joined}`);
    setInterval(() => call.write({ heartbeat: { in_flight: 0, gpus: [gpu] } }), m.registered.heartbeat_interval_ms);
  });
  call.write({ register: { name: `sim-${i}`, agent_version: 'node_swarm/1', backend: 'simulated', max_concurrency: 4,
    models: [{ id: `model-${i % 10}`, hot: true, context_length: 8192, price_input_per_1k: 0.1, price_output_per_1k: 0.2 }], gpus: [gpu] } });
  call.write({ credit: { slots: 4 } });
}
