// A TCP proxy that hands the backend's bytes to the router in random pieces of 1 to 7 bytes,
// a few at a time, so each adapter's incremental parsing meets every kind of split.
import net from 'node:net';

export async function startTrickleProxy(targetUrl, seed = 7) {
  const target = new URL(targetUrl);
  let rnd = seed;
  const next = () => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) % 7) + 1;
  const sockets = new Set();
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const queue = [];
    let writing = false;
    let ended = false;
    const pump = () => {
      if (writing) return;
      if (!queue.length) {
        if (ended) client.end();
        return;
      }
      writing = true;
      const buf = queue.shift();
      const n = Math.min(next(), buf.length);
      client.write(buf.subarray(0, n));
      if (n < buf.length) queue.unshift(buf.subarray(n));
      setImmediate(() => {
        writing = false;
        pump();
      });
    };
    upstream.on('data', (d) => {
      queue.push(d);
      pump();
    });
    upstream.on('end', () => {
      ended = true;
      pump();
    });
    client.on('data', (d) => upstream.write(d));
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.on('error', () => b.destroy());
      a.on('close', () => sockets.delete(a));
    }
    client.on('close', () => upstream.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `${target.protocol}//127.0.0.1:${server.address().port}${target.pathname === '/' ? '' : target.pathname}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
