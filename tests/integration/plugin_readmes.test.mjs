// The first-party plugins' README examples, run as written: the router of ./scripts/run.sh (the
// example config and a demo node) with the plugin added as each README's config block says, and
// each README's "Try it" command through bash. Only the port, the plugin's path and, for the web
// plugin, the search URL (a fake SearxNG) differ.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { startFakeSearxng } from './support/fake_searxng.mjs';
import { startNode, startRouter } from './support/nodes.mjs';
import * as pdfs from './support/pdfs.mjs';
import { repoRoot, writeConfig } from './support/plexus.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const readme = (name) => fs.readFileSync(path.join(repoRoot, 'plugins', name, 'README.md'), 'utf8');
const block = (text, lang, after) => text.slice(text.indexOf(after)).match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'))[1];
// Asynchronous: the fake SearxNG lives in this process and must answer while curl runs.
const bash = async (script, options = {}) => (await promisify(execFile)('bash', ['-c', script], { encoding: 'utf8', ...options })).stdout;
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// The README's config block (its keys, as they go into the config), the plugin's path pointed at
// this build.
function configFrom(text, file) {
  const keys = JSON.parse(`{${block(text, 'jsonc', '## Enable it')}}`);
  keys.plugins = keys.plugins.map((e) => ({ ...e, path: path.join(pluginDir, file) }));
  return keys;
}

async function routerWith(keys) {
  const example = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples/plexus.json'), 'utf8').replace(/^\s*\/\/.*$/gm, ''));
  const router = await startRouter(writeConfig({ ...example, ...keys }));
  cleanups.push(() => router.stop());
  const node = await startNode(router, { name: 'demo-node', token: 'nt-plexus-demo', args: ['--backend', 'demo'] });
  cleanups.push(() => node.stop());
  return router;
}

test('plugins/web/README.md: the config block and the curl, as written', async () => {
  const text = readme('web');
  const searx = await startFakeSearxng();
  cleanups.push(() => searx.close());
  const keys = configFrom(text, 'libplexus_web.so');
  keys.plugins = keys.plugins.map((p) => ({ ...p, config: { ...p.config, search_url: searx.url } }));
  const router = await routerWith(keys);
  const curl = block(text, 'sh', '## Try it').replaceAll('127.0.0.1:8080', `127.0.0.1:${router.port}`);
  const out = await bash(curl);
  assert.match(out, /^HTTP\/1\.1 200/);
  assert.match(out, /\r\nx-plexus-web-search: ok; results=3\r\n/i);
  assert.equal(searx.requests.at(-1).query.q, 'What is SearxNG?');
});

test('plugins/file_parser/README.md: the config block and the curl, as written', async () => {
  const text = readme('file_parser');
  const router = await routerWith(configFrom(text, 'libplexus_file_parser.so'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-pdf-readme-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'report.pdf'), await pdfs.multiPagePdf(['First page of the report.', 'Second page.']));
  const curl = block(text, 'sh', '## Try it').replaceAll('127.0.0.1:8080', `127.0.0.1:${router.port}`);
  const run = () => bash(curl, { cwd: dir });
  const first = await run();
  assert.match(first, /^HTTP\/1\.1 200/);
  assert.match(first, /\r\nx-plexus-file-parser: files=1; pages=2; cached=0\r\n/i);
  assert.match(await run(), /\r\nx-plexus-file-parser: files=1; pages=2; cached=1\r\n/i);
});
