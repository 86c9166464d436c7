// docs/plugins.md "Your first routing policy in five minutes", run exactly as written: the
// script and config blocks saved under the names the text gives, the shell block run in that
// folder (only the port differs: the test takes a free one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, plexusBin, repoRoot } from './support/plexus.mjs';

const doc = fs.readFileSync(path.join(repoRoot, 'docs/plugins.md'), 'utf8');
const block = (marker) => doc.split(`<!-- walkthrough:${marker} -->`)[1].match(/```\w+\n([\s\S]*?)```/)[1];

test('the five-minute routing policy works as written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-walkthrough-'));
  const port = await freePort();
  const withPort = (s) => s.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`);
  fs.writeFileSync(path.join(dir, 'cheapest.lua'), block('policy'));
  fs.writeFileSync(path.join(dir, 'policy.json'), withPort(block('config')));
  fs.mkdirSync(path.join(dir, 'build'));
  fs.symlinkSync(plexusBin, path.join(dir, 'build/plexus'));
  const shell = `${withPort(block('run'))}\nstatus=$?\nkill %1\nwait\nexit $status\n`;
  const out = execFileSync('bash', ['-c', shell], { cwd: dir, encoding: 'utf8', timeout: 20000 });
  assert.match(out, /policy\.json: OK/);
  assert.match(out, /x-plexus-node: budget-node/i);
});
