// Listens on a free loopback port and tracks sockets, so a fake backend can be closed at once.
export async function serve(server, state) {
  state.sockets = new Set();
  server.on('connection', (s) => {
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    async close() {
      for (const s of state.sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
