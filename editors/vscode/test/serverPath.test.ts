// Finding builder-lsp: the bundled binary's place in the lookup order, its exec bits, and the
// retry that waits for settings which reach the extension host late (remote and web windows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  bundledServerPath,
  describeSource,
  ensureExecutable,
  resolveServerPath,
  resolveWithRetry,
  type Resolved,
} from '../src/serverPath';

const env = { PATH: '/usr/local/bin:/usr/bin', HOME: '/home/u' };
const exists = (set: string[]) => (p: string) => set.includes(p);
const BUNDLED = '/ext/server/builder-lsp';

test('bundled: after the setting, before the workspace, ~/.cargo/bin and PATH', () => {
  assert.equal(bundledServerPath('/ext', 'linux'), BUNDLED);
  assert.equal(bundledServerPath('C:\\ext', 'win32'), path.join('C:\\ext', 'server', 'builder-lsp.exe'));
  const all = [BUNDLED, '/w/target/release/builder-lsp', '/home/u/.cargo/bin/builder-lsp', '/usr/bin/builder-lsp', '/opt/builder-lsp'];
  assert.deepEqual(resolveServerPath('/opt/builder-lsp', env, exists(all), 'linux', ['/w'], BUNDLED), {
    ok: true,
    path: '/opt/builder-lsp',
    source: 'setting',
  });
  assert.deepEqual(resolveServerPath('  ', env, exists(all), 'linux', ['/w'], BUNDLED), { ok: true, path: BUNDLED, source: 'bundled' });
  assert.deepEqual(resolveServerPath(undefined, env, exists(all.slice(1)), 'linux', ['/w'], BUNDLED), {
    ok: true,
    path: '/w/target/release/builder-lsp',
    source: 'workspace',
  });
  // A wrong setting is still an error, not silently replaced by the bundled binary.
  const bad = resolveServerPath('/nope', env, exists(all), 'linux', ['/w'], BUNDLED);
  assert.equal(bad.ok, false);
  const none = resolveServerPath(undefined, env, exists([]), 'linux', ['/w'], BUNDLED);
  assert.match(!none.ok ? none.message : '', /bundled server.*cargo install builder-lsp/);
  assert.equal(describeSource('bundled'), "the extension's bundled binary");
  assert.equal(describeSource('setting'), 'builder.serverPath');
});

/** A settings reader that has nothing for the first `late` reads (settings still on their way). */
function lateSetting(late: number, value: string | undefined) {
  let reads = 0;
  return {
    read: () => (++reads > late ? value : undefined),
    reads: () => reads,
  };
}

/** A sleep that really waits (scaled down) and records the waits asked for. */
function recordingSleep(scale = 0.01) {
  const waits: number[] = [];
  return {
    waits,
    sleep: (ms: number) => {
      waits.push(ms);
      return new Promise<void>((r) => setTimeout(r, ms * scale));
    },
  };
}

test('resolveWithRetry: a setting that arrives after 3 reads is used, not the error', async () => {
  const setting = lateSetting(3, '/opt/builder-lsp');
  const clock = recordingSleep();
  const resolve = (s: string | undefined): Resolved => resolveServerPath(s, env, exists(['/opt/builder-lsp']), 'linux');
  const r = await resolveWithRetry(setting.read, resolve, { sleep: clock.sleep });
  assert.deepEqual(r, { ok: true, path: '/opt/builder-lsp', source: 'setting', attempts: 4 });
  assert.equal(setting.reads(), 4, 'the setting is read afresh for every attempt');
  assert.deepEqual(clock.waits, [100, 200, 400], 'short doubling waits');
});

test('resolveWithRetry: under real delay (settings delivered after ~1 s by a timer)', async () => {
  let delivered: string | undefined;
  const t = setTimeout(() => (delivered = '/opt/builder-lsp'), 1000);
  const started = Date.now();
  const r = await resolveWithRetry(
    () => delivered,
    (s) => resolveServerPath(s, env, exists(['/opt/builder-lsp']), 'linux'),
  );
  clearTimeout(t);
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.source, 'setting');
  const took = Date.now() - started;
  assert.ok(took >= 1000 && took < 3500, `resolved once the setting arrived (${took} ms)`);
});

test('resolveWithRetry: a setting that never comes gives the not-found message after ~3 s of waits', async () => {
  const setting = lateSetting(Infinity, '/opt/builder-lsp');
  const clock = recordingSleep();
  const retries: number[] = [];
  const r = await resolveWithRetry(setting.read, (s) => resolveServerPath(s, env, exists([]), 'linux'), {
    sleep: clock.sleep,
    onRetry: (n) => retries.push(n),
  });
  assert.equal(r.ok, false);
  assert.equal(r.attempts, 6);
  assert.equal(setting.reads(), 6);
  assert.deepEqual(clock.waits, [100, 200, 400, 800, 1600]);
  const total = clock.waits.reduce((a, b) => a + b, 0);
  assert.ok(total >= 2500 && total <= 3500, `about 3 s in all (${total} ms)`);
  assert.deepEqual(retries, [1, 2, 3, 4, 5]);
  assert.equal(
    !r.ok ? r.message : '',
    "builder-lsp was not found (builder.serverPath, the extension's bundled server, the workspace's target/release and target/debug, ~/.cargo/bin, PATH). " +
      'Install it with "cargo install builder-lsp" (or "cargo install --path ." in a clone of the builder-lsp repository), or set builder.serverPath to the binary.',
  );
});

test('resolveWithRetry: found at once → no wait; a wrong setting keeps its own message', async () => {
  const clock = recordingSleep();
  const r = await resolveWithRetry(() => '', (s) => resolveServerPath(s, env, exists(['/usr/bin/builder-lsp']), 'linux'), { sleep: clock.sleep });
  assert.deepEqual(r, { ok: true, path: '/usr/bin/builder-lsp', source: 'PATH', attempts: 1 });
  assert.deepEqual(clock.waits, []);
  const bad = await resolveWithRetry(() => '/nope', (s) => resolveServerPath(s, env, exists([]), 'linux'), { sleep: clock.sleep, attempts: 3 });
  assert.equal(bad.attempts, 3);
  assert.match(!bad.ok ? bad.message : '', /builder.serverPath is "\/nope", but no executable builder-lsp is there/);
});

test('ensureExecutable: a bundled binary unzipped without exec bits is made 0755, then found', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'builder-bundled-'));
  try {
    const bin = bundledServerPath(dir, 'linux');
    fs.mkdirSync(path.dirname(bin));
    fs.writeFileSync(bin, '#!/bin/sh\necho builder-lsp\n');
    fs.chmodSync(bin, 0o644);
    const isExec = (p: string) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return fs.statSync(p).isFile();
      } catch {
        return false;
      }
    };
    if (process.getuid?.() !== 0) {
      // (root passes X_OK checks on any file with one x bit; 0644 has none either way)
      assert.equal(isExec(bin), false);
    }
    assert.equal(ensureExecutable(bin, fs, 'linux'), true);
    assert.equal(fs.statSync(bin).mode & 0o777, 0o755);
    assert.equal(ensureExecutable(bin, fs, 'linux'), false, 'already executable: left alone');
    assert.deepEqual(resolveServerPath(undefined, {}, isExec, 'linux', [], bin), { ok: true, path: bin, source: 'bundled' });
    assert.equal(ensureExecutable(path.join(dir, 'missing'), fs, 'linux'), false, 'no file: no error');
    assert.equal(ensureExecutable(bin, fs, 'win32'), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
