// Unit tests of the extension's pure modules (no VS Code needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as args from '../src/args';
import { PALETTE, serverCommandsUsed, tableProblems } from '../src/commands';
import { completionView } from '../src/completion';
import { filesLine, formatTime, type HistoryEntry, historyPickItems, lastGeneration, parseHistory, revertSummary } from '../src/history';
import { connectionSummary, modelPickItems, parseModelsResult, providerOf, testPickItems, validateModelId } from '../src/models';
import { parsePackageInput, validatePackageInput } from '../src/packages';
import { redact } from '../src/redact';
import {
  applySummary,
  cancelledMessage,
  DeltaWriter,
  detectSummary,
  errorMessage,
  generateSummary,
  installLog,
  installSummary,
  isCancelled,
  parseDetect,
  sandboxCreateSummary,
  toSave,
  zipSummary,
} from '../src/results';
import { resolveServerPath } from '../src/serverPath';
import { initializationOptions, needsRestart, toServerSettings } from '../src/settings';
import { formatUptime, noneView, shouldPoll, startingView, statusMessage, viewFromStatus } from '../src/status';
import { conversationNodes, historyNodes, promptHtml, providerNodes, sandboxNodes } from '../src/view';
import { localhostForm, panelHtml, previewBase, PROBE_PORT, portOf, shouldProbe } from '../src/preview';

test('packages: spaces, commas, versions, scopes, dev flag, pasted npm command', () => {
  assert.deepEqual(parsePackageInput('react-router-dom, zod@^3.23  @tanstack/react-query'), {
    packages: ['react-router-dom', 'zod@^3.23', '@tanstack/react-query'],
    dev: false,
    invalid: [],
  });
  assert.deepEqual(parsePackageInput('npm install -D @types/node vitest'), {
    packages: ['@types/node', 'vitest'],
    dev: true,
    invalid: [],
  });
  assert.deepEqual(parsePackageInput('pnpm add a a b --save-dev').packages, ['a', 'b']);
  assert.equal(parsePackageInput('yarn add x').dev, false);
  assert.deepEqual(parsePackageInput('good ../evil http://x.y/z Bad!Name').invalid, ['../evil', 'http://x.y/z', 'Bad!Name']);
  assert.deepEqual(parsePackageInput('@scope/pkg@next').packages, ['@scope/pkg@next']);
  assert.deepEqual(parsePackageInput('   ').packages, []);
});

test('packages: input box validation', () => {
  assert.match(validatePackageInput('') ?? '', /Enter one or more/);
  assert.match(validatePackageInput('-D') ?? '', /Enter one or more/);
  assert.match(validatePackageInput('ok ;rm') ?? '', /Not a package name: ;rm/);
  assert.equal(validatePackageInput('react zod'), undefined);
});

const MODELS = {
  defaultModel: 'anthropic/claude-sonnet-4-5',
  providers: [
    { provider: 'anthropic', name: 'Anthropic', configured: true, keyPresent: true, keyRequired: true, keySource: 'ANTHROPIC_API_KEY' },
    { provider: 'openai', name: 'OpenAI', configured: false, keyPresent: false, keyRequired: true, keySource: 'OPENAI_API_KEY' },
    { provider: 'ollama', name: 'Ollama', configured: true, keyPresent: false, keyRequired: false },
    { provider: 'compatible', name: 'OpenAI-compatible server', configured: false, keyPresent: false, keyRequired: false },
    'junk',
    { name: 'no id' },
  ],
};

test('models: default first, suggestions of configured providers, custom entry, providers needing a key', () => {
  const items = modelPickItems(parseModelsResult(MODELS));
  assert.equal(items[0].model, 'anthropic/claude-sonnet-4-5');
  assert.equal(items[0].description, 'default');
  const models = items.filter((i) => i.kind === 'model').map((i) => i.model);
  assert.ok(models.every((m) => m?.startsWith('anthropic/')), JSON.stringify(models));
  assert.equal(new Set(models).size, models.length, 'no duplicates');
  assert.deepEqual(
    items.filter((i) => i.kind === 'needsKey').map((i) => i.provider),
    ['openai'],
    'compatible needs no key, so it is not listed as needing one',
  );
  assert.equal(items.filter((i) => i.kind === 'custom').length, 1);
  const lastUsedFirst = modelPickItems(parseModelsResult(MODELS), 'anthropic/claude-haiku-4-5');
  assert.equal(lastUsedFirst[0].model, 'anthropic/claude-haiku-4-5');
  assert.equal(lastUsedFirst[0].description, 'last used');
  // A last-used model of a provider that lost its key is not offered first.
  assert.equal(modelPickItems(parseModelsResult(MODELS), 'openai/gpt-4.1')[0].model, 'anthropic/claude-sonnet-4-5');
});

test('models: garbage results give only the custom entry', () => {
  for (const v of [null, 42, 'x', { providers: 'no' }]) {
    const items = modelPickItems(parseModelsResult(v));
    assert.deepEqual(
      items.map((i) => i.kind),
      ['custom'],
    );
  }
});

const LISTED = {
  defaultModel: 'openai/gpt-4.1',
  providers: [
    {
      provider: 'openai', name: 'OpenAI', configured: true, keyPresent: true, keyRequired: true, keySource: 'OPENAI_API_KEY',
      listedModels: ['openai/gpt-4.1', 'openai/o4-mini', 'openai/o4-mini', 7, '', 'has space'], listedCount: 250, reachable: true, latencyMs: 41.6,
    },
    {
      provider: 'ollama', name: 'Ollama', configured: true, keyPresent: false, keyRequired: false, baseUrl: 'http://127.0.0.1:11434/v1',
      listedModels: ['ollama/llama3.2:latest', 'qwen2.5-coder:7b'], listedCount: 2, reachable: true, latencyMs: 3,
    },
    {
      provider: 'compatible', name: 'OpenAI-compatible server', configured: true, keyPresent: false, keyRequired: false,
      listedModels: [], listedCount: 0, reachable: false, error: 'no answer from http://10.0.0.9/v1/models within 3000 ms', latencyMs: 3001,
    },
    { provider: 'groq', name: 'Groq', configured: false, keyPresent: false, keyRequired: true, keySource: 'GROQ_API_KEY', reachable: false, error: 'no API key: set GROQ_API_KEY' },
  ],
};

test('models: listing fields are parsed defensively', () => {
  const r = parseModelsResult(LISTED);
  const openai = r.providers.find((p) => p.provider === 'openai');
  assert.deepEqual(openai?.listing, { models: ['openai/gpt-4.1', 'openai/o4-mini'], count: 250, reachable: true, error: undefined, latencyMs: 41.6 });
  // An id without its provider prefix gets one.
  assert.deepEqual(r.providers.find((p) => p.provider === 'ollama')?.listing?.models, ['ollama/llama3.2:latest', 'ollama/qwen2.5-coder:7b']);
  assert.equal(r.providers.find((p) => p.provider === 'compatible')?.listing?.reachable, false);
  // Without `reachable` there is no listing (the answer to a plain `builder.models`).
  assert.equal(parseModelsResult(MODELS).providers[0].listing, undefined);
  assert.equal(parseModelsResult({ providers: [{ provider: 'x', reachable: 'yes', listedModels: 'no' }] }).providers[0].listing, undefined);
  const weird = parseModelsResult({ providers: [{ provider: 'x', reachable: true, listedModels: 'no', listedCount: -3, latencyMs: 'fast' }] }).providers[0].listing;
  assert.deepEqual(weird, { models: [], count: 0, reachable: true, error: undefined, latencyMs: undefined });
});

test('models: listed models of configured providers first, then suggestions, a warning per unreachable one, test and custom entries', () => {
  const items = modelPickItems(parseModelsResult(LISTED));
  const models = items.filter((i) => i.kind === 'model').map((i) => i.model);
  assert.deepEqual(models.slice(0, 5), ['openai/gpt-4.1', 'openai/o4-mini', 'ollama/llama3.2:latest', 'ollama/qwen2.5-coder:7b', 'openai/gpt-4.1-mini']);
  assert.equal(items[0].description, 'default');
  assert.equal(items[1].description, 'OpenAI · on the server');
  assert.equal(new Set(models).size, models.length, 'no duplicates');
  assert.ok(!models.some((m) => m?.startsWith('groq/')), 'an unconfigured provider offers no models');
  const tests = items.filter((i) => i.kind === 'test');
  assert.deepEqual(tests.map((t) => t.provider), ['compatible', undefined]);
  assert.match(tests[0].detail ?? '', /within 3000 ms/);
  assert.equal(tests[1].label, 'Test connection…');
  const kinds = items.map((i) => i.kind);
  assert.ok(kinds.indexOf('test') < kinds.indexOf('custom') && kinds.indexOf('custom') < kinds.indexOf('needsKey'), kinds.join());
});

test('models: test connection picks and answers', () => {
  const r = parseModelsResult(LISTED);
  assert.deepEqual(testPickItems(r).map((i) => i.provider), ['openai', 'ollama', 'compatible', 'groq']);
  assert.equal(testPickItems(r)[1].description, 'http://127.0.0.1:11434/v1');
  assert.equal(testPickItems(r)[3].description, 'not configured');
  assert.deepEqual(connectionSummary(r, 'openai'), { level: 'info', message: 'OpenAI: reachable, 250 models, 42 ms' });
  assert.deepEqual(connectionSummary(r, 'compatible'), { level: 'error', message: 'OpenAI-compatible server: no answer from http://10.0.0.9/v1/models within 3000 ms' });
  assert.deepEqual(connectionSummary(r, 'groq'), { level: 'error', message: 'Groq: no API key: set GROQ_API_KEY' });
  assert.equal(connectionSummary(parseModelsResult(MODELS), 'anthropic').level, 'error');
  const one = parseModelsResult({ providers: [{ provider: 'ollama', name: 'Ollama', reachable: true, listedModels: ['ollama/a'], listedCount: 1 }] });
  assert.equal(connectionSummary(one, 'ollama').message, 'Ollama: reachable, 1 model');
});

test('models: list arguments', () => {
  assert.deepEqual(args.modelsListArgs(), { list: true });
  assert.deepEqual(args.modelsListArgs({ provider: 'ollama', timeoutMs: 5000 }), { list: true, provider: 'ollama', timeoutMs: 5000 });
  assert.deepEqual(args.modelsListArgs({ project: 'file:///p', timeoutMs: 0 }), { list: true, timeoutMs: 1, project: 'file:///p' });
  assert.equal(args.modelsListArgs({ timeoutMs: 1e9 }).timeoutMs, 60000);
});

test('models: typed ids', () => {
  assert.equal(validateModelId('ollama/qwen2.5-coder'), undefined);
  assert.equal(validateModelId('openrouter/anthropic/claude-sonnet-4.5'), undefined);
  assert.match(validateModelId('gpt-4') ?? '', /provider\/model/);
  assert.match(validateModelId('openai/') ?? '', /provider\/model/);
  assert.match(validateModelId('foo/bar') ?? '', /Unknown provider "foo"/);
  assert.equal(providerOf('groq/openai/gpt-oss-120b'), 'groq');
});

test('settings: allow-list, no apiKeys, no client-only keys, unset values dropped', () => {
  const raw: Record<string, unknown> = {
    model: '  openai/gpt-4.1 ',
    temperature: null,
    maxTokens: 4000,
    maxResponseBytes: undefined,
    allowProtected: false,
    streamDeltas: true,
    baseUrls: { openai: 'http://127.0.0.1:9/v1', anthropic: '' },
    contextTokens: 12000,
    continueTruncated: true,
    sandbox: { provider: 'local', isolation: 'auto' },
    apiKeys: { openai: 'sk-should-never-travel' },
    serverPath: '/usr/bin/builder-lsp',
    trace: { server: 'verbose' },
  };
  const s = toServerSettings((k) => raw[k]);
  assert.deepEqual(s, {
    model: 'openai/gpt-4.1',
    maxTokens: 4000,
    allowProtected: false,
    streamDeltas: true,
    baseUrls: { openai: 'http://127.0.0.1:9/v1' },
    contextTokens: 12000,
    continueTruncated: true,
    sandbox: { provider: 'local', isolation: 'auto' },
  });
  assert.ok(!JSON.stringify(s).includes('sk-should-never-travel'));
  assert.deepEqual(toServerSettings((k) => (k === 'baseUrls' ? { openai: ' ' } : k === 'model' ? '' : undefined)), {});
});

test('settings: initializationOptions carry deltas and non-empty keys only', () => {
  assert.deepEqual(initializationOptions(undefined, {}), { streamDeltas: true });
  assert.deepEqual(initializationOptions(false, { openai: '', anthropic: undefined }), { streamDeltas: false });
  assert.deepEqual(initializationOptions(true, { openai: ' sk-1 ', groq: 'gsk' }), {
    streamDeltas: true,
    apiKeys: { openai: 'sk-1', groq: 'gsk' },
  });
  assert.equal(needsRestart((s) => s === 'builder.serverPath'), true);
  assert.equal(needsRestart((s) => s === 'builder.model'), false);
});

test('redact: known keys and any apiKeys object', () => {
  const line = '[Trace] Params: {"initializationOptions":{"streamDeltas":true,"apiKeys":{"openai":"sk-abc123","groq":"gsk_q\\"x"}}} and sk-abc123 again';
  const out = redact(line, ['sk-abc123']);
  assert.ok(!out.includes('sk-abc123'), out);
  assert.ok(!out.includes('gsk_q'), out);
  assert.match(out, /"apiKeys":\{"openai":"\*\*\*","groq":"\*\*\*"\}/);
  assert.equal(redact('short ab', ['ab']), 'short ab', 'too-short secrets are not masked everywhere');
  // vscode-languageclient's verbose trace prints params with JSON.stringify(data, null, 4).
  const traced = JSON.stringify({ initializationOptions: { streamDeltas: true, apiKeys: { anthropic: 'unknown-key-value' } } }, null, 4);
  const masked = redact(traced, []);
  assert.ok(!masked.includes('unknown-key-value'), masked);
  assert.ok(masked.includes('"anthropic": "***"'), masked);
});

test('serverPath: setting, then PATH, then ~/.cargo/bin, else the install hint', () => {
  const exists = (set: string[]) => (p: string) => set.includes(p);
  const env = { PATH: '/usr/local/bin:/usr/bin', HOME: '/home/u' };
  assert.deepEqual(resolveServerPath('~/bin/builder-lsp', env, exists(['/home/u/bin/builder-lsp']), 'linux'), {
    ok: true,
    path: '/home/u/bin/builder-lsp',
    source: 'setting',
  });
  assert.deepEqual(resolveServerPath('', env, exists(['/usr/bin/builder-lsp']), 'linux'), {
    ok: true,
    path: '/usr/bin/builder-lsp',
    source: 'PATH',
  });
  assert.deepEqual(resolveServerPath(undefined, env, exists(['/home/u/.cargo/bin/builder-lsp']), 'linux'), {
    ok: true,
    path: '/home/u/.cargo/bin/builder-lsp',
    source: 'cargo',
  });
  // Order: the workspace's own build, then ~/.cargo/bin, then PATH (the least reliable).
  const all = ['/w/target/debug/builder-lsp', '/home/u/.cargo/bin/builder-lsp', '/usr/bin/builder-lsp'];
  assert.deepEqual(resolveServerPath(undefined, env, exists(all), 'linux', ['/w']), {
    ok: true,
    path: '/w/target/debug/builder-lsp',
    source: 'workspace',
  });
  assert.deepEqual(resolveServerPath(undefined, env, exists([...all, '/w/target/release/builder-lsp']), 'linux', ['/w']), {
    ok: true,
    path: '/w/target/release/builder-lsp',
    source: 'workspace',
  });
  assert.deepEqual(resolveServerPath(undefined, env, exists(all.slice(1)), 'linux', ['/w']), {
    ok: true,
    path: '/home/u/.cargo/bin/builder-lsp',
    source: 'cargo',
  });
  const missing = resolveServerPath(undefined, env, exists([]), 'linux');
  assert.equal(missing.ok, false);
  assert.match(!missing.ok ? missing.message : '', /cargo install builder-lsp.*cargo install --path \./);
  const badSetting = resolveServerPath('/nope', env, exists(['/usr/bin/builder-lsp']), 'linux');
  assert.equal(badSetting.ok, false, 'a wrong setting is reported, not silently replaced by PATH');
  assert.match(!badSetting.ok ? badSetting.message : '', /builder.serverPath is "\/nope"/);
});

test('status bar: none / starting / running / unhealthy, polling only while a sandbox exists', () => {
  assert.equal(viewFromStatus({ active: false }).state, 'none');
  assert.equal(viewFromStatus(null).state, 'none');
  const running = viewFromStatus({
    active: true,
    healthy: true,
    provider: 'e2b',
    sandboxId: 'sb1',
    url: 'https://5173-sb1.e2b.app',
    uptimeSeconds: 3725,
    isolation: 'none',
  });
  assert.equal(running.state, 'running');
  assert.equal(running.text, '$(vm-running) Sandbox: e2b');
  assert.equal(running.url, 'https://5173-sb1.e2b.app');
  assert.match(running.tooltip, /up 1 h 2 min/);
  const sick = viewFromStatus({ active: true, healthy: false, provider: 'local', url: 'http://127.0.0.1:5173' });
  assert.equal(sick.state, 'unhealthy');
  assert.match(sick.text, /unhealthy/);
  assert.equal(startingView('vercel').state, 'starting');
  assert.match(noneView('builder.sandbox.status is not available yet').tooltip, /not available yet/);
  assert.equal(shouldPoll(noneView()), false);
  // "Builder: Sandbox Status" reads as one line, never "Builder: Builder sandbox: none — click …".
  assert.equal(statusMessage(noneView()), 'Builder: no sandbox is running');
  assert.equal(statusMessage(noneView('server not running')), 'Builder: no sandbox is running (server not running)');
  const line = statusMessage(viewFromStatus({ active: true, provider: 'local', sandboxId: 'local-1', url: 'http://127.0.0.1:5173', isolation: 'none' }));
  assert.equal(line, 'Builder: sandbox local-1 · provider: local, isolation: none · preview: http://127.0.0.1:5173');
  assert.equal(shouldPoll(running), true);
  assert.equal(shouldPoll(sick), true);
  assert.equal(shouldPoll(startingView('local')), true);
  assert.equal(formatUptime(42), '42s');
  assert.equal(formatUptime(600), '10 min');
});

test('args: only declared fields, project only when several folders, wait for long commands', () => {
  assert.deepEqual(args.generateArgs({ prompt: ' hi ', model: 'openai/gpt-4.1' }), {
    prompt: 'hi',
    model: 'openai/gpt-4.1',
    wait: true,
  });
  assert.deepEqual(args.applyArgs('<file path="a">x</file>', 'file:///w/a'), {
    response: '<file path="a">x</file>',
    wait: true,
    project: 'file:///w/a',
  });
  assert.deepEqual(args.installArgs({ packages: ['a'], dev: false }), { packages: ['a'], wait: true });
  assert.deepEqual(args.installArgs({ packages: ['a'], dev: true }), { packages: ['a'], wait: true, dev: true });
  assert.deepEqual(args.detectArgs(), { install: false });
  assert.deepEqual(args.sandboxCreateArgs('e2b'), { provider: 'e2b', wait: true, open: false });
  assert.deepEqual(args.sandboxCreateArgs('local', undefined, '/proxy/{{port}}/'), { provider: 'local', wait: true, open: false, previewBase: '/proxy/{{port}}/' });
  assert.deepEqual(args.sandboxArgs(), {});
  assert.deepEqual(args.chooseProject([]), { ask: false });
  assert.deepEqual(args.chooseProject(['file:///a']), { ask: false });
  assert.deepEqual(args.chooseProject(['file:///a', 'file:///b'], 'file:///b'), { project: 'file:///b', ask: false });
  assert.deepEqual(args.chooseProject(['file:///a', 'file:///b']), { ask: true });
  assert.deepEqual(args.chooseProject(['file:///a', 'file:///b'], 'file:///c'), { ask: true });
});

test('command table: titles, ids outside the server namespace, every command does something', () => {
  assert.deepEqual(tableProblems(), []);
  assert.ok(tableProblems([{ id: 'builder.generate', title: 'Generate', server: [] }]).length >= 3);
  const titles = PALETTE.map((c) => c.title);
  for (const t of [
    'Builder: Generate…',
    'Builder: Apply Answer from Clipboard',
    'Builder: Create Sandbox',
    'Builder: Open Preview',
    'Builder: Sandbox Status',
    'Builder: Kill Sandbox',
    'Builder: Install Packages…',
    'Builder: Detect Missing Packages',
    'Builder: Export Zip',
    'Builder: Reset Conversation',
    'Builder: Set API Key…',
    'Builder: Show Output',
  ]) {
    assert.ok(titles.includes(t), `missing palette title ${t}`);
  }
  assert.ok(serverCommandsUsed().includes('builder.apply'));
});

test('results: apply, generate, install, detect, zip, sandbox summaries', () => {
  const ok = applySummary({
    filesCreated: ['src/App.jsx'],
    filesUpdated: ['src/index.css'],
    filesSkipped: [{ path: 'package.json', reason: 'protected' }],
    errors: [],
    applied: true,
    message: '1 created, 1 updated, 1 skipped',
  });
  assert.equal(ok.level, 'warning');
  assert.equal(ok.changedFiles, 2);
  assert.match(ok.message, /skipped package\.json \(protected\)/);
  assert.equal(applySummary({ filesCreated: ['a'], errors: [], applied: true, message: 'm' }).level, 'info');
  assert.equal(applySummary({ errors: ['boom'], applied: false }).level, 'error');
  assert.equal(applySummary({ errors: [], applied: true }).level, 'warning', 'nothing changed is worth a warning');
  const g = generateSummary({ filesCreated: ['a.jsx'], model: 'openai/gpt-4.1', packages: ['zod'], errors: [], applied: true });
  assert.match(g.message, /zod/);
  assert.match(g.message, /\[openai\/gpt-4\.1\]$/);
  assert.equal(generateSummary({ stopReason: 'cancelled', errors: [], filesCreated: ['a'] }).level, 'warning');
  const inst = installSummary({ installed: ['zod'], alreadyInstalled: ['react'], failed: [{ name: 'nope', error: 'E404' }], log: '' });
  assert.equal(inst.level, 'error');
  assert.match(inst.message, /installed zod; already installed react; failed nope \(E404\)/);
  assert.equal(installLog({ log: ['added 1 package', 'done', 3] }), 'added 1 package\ndone');
  assert.equal(installLog({ log: 'one string' }), 'one string');
  assert.equal(installLog({}), '');
  const d = parseDetect({ imports: ['react', 'zod', 'x'], packages: ['zod'], typePackages: ['@types/x'], installed: [], failed: [] });
  assert.deepEqual(d, { packages: ['zod'], typePackages: ['@types/x'], imports: 3 });
  assert.match(detectSummary(d).message, /missing: zod; missing types \(dev\): @types\/x/);
  assert.match(detectSummary(parseDetect({ imports: ['react'] })).message, /No missing packages \(1 import checked\)/);
  assert.match(zipSummary({ path: '/w/app.zip', files: 12, bytes: 2_500_000, excluded: ['.env'] }).message, /12 files, 2\.5 MB, 1 left out/);
  const sb = sandboxCreateSummary({ sandboxId: 'local-1', provider: 'local', url: 'http://127.0.0.1:5173', createdAt: 'x' });
  assert.equal(sb.url, 'http://127.0.0.1:5173');
  assert.equal(sb.changedPaths, undefined);
  // The template's files and the installed packages' package.json are what to save.
  const tpl = sandboxCreateSummary({ sandboxId: 'local-2', provider: 'local', url: 'http://127.0.0.1:5173', templateApplied: ['package.json', 'index.html'], packagesInstalled: ['zod'] });
  assert.deepEqual(tpl.changedPaths, ['package.json', 'index.html']);
  assert.match(tpl.message, /wrote 2 template files$/);
  assert.deepEqual(sandboxCreateSummary({ url: 'http://x', templateApplied: [], packagesInstalled: ['zod'] }).changedPaths, ['package.json']);
  assert.match(sandboxCreateSummary({ url: 'http://x', templateApplied: ['index.html'] }).message, /wrote 1 template file$/);
});

test('preview: the proxy base learnt from the port mapping, the loopback form, the panel page', () => {
  // code-server: a path prefix with the port in it.
  assert.equal(previewBase('auto', `http://127.0.0.1:8080/proxy/${PROBE_PORT}/`), '/proxy/{{port}}/');
  assert.equal(previewBase('auto', `https://ide.example/me/absproxy/${PROBE_PORT}`), '/me/absproxy/{{port}}/');
  // Desktop, a forwarded port, a per-port host: no base.
  assert.equal(previewBase('auto', `http://localhost:${PROBE_PORT}/`), undefined);
  assert.equal(previewBase('auto', 'http://localhost:40123/'), undefined);
  assert.equal(previewBase('auto', `https://${PROBE_PORT}-x.app.github.dev/`), undefined);
  assert.equal(previewBase('auto', undefined), undefined);
  assert.equal(previewBase('auto', 'not a url'), undefined);
  // An explicit setting wins; empty/off is none.
  assert.equal(previewBase('/absproxy/{{port}}', `http://h/proxy/${PROBE_PORT}/`), '/absproxy/{{port}}/');
  assert.equal(previewBase('', `http://h/proxy/${PROBE_PORT}/`), undefined);
  assert.equal(previewBase('off', undefined), undefined);
  assert.equal(shouldProbe(true, {}), true);
  assert.equal(shouldProbe(false, { VSCODE_PROXY_URI: './proxy/{{port}}' }), true);
  assert.equal(shouldProbe(false, {}), false);
  assert.equal(localhostForm('http://127.0.0.1:5173/'), 'http://localhost:5173/');
  assert.equal(localhostForm('https://5173-abc.e2b.app/'), 'https://5173-abc.e2b.app/');
  assert.equal(portOf('http://127.0.0.1:5173/'), 5173);
  assert.equal(portOf('https://x.app/'), 443);
  const html = panelHtml('http://127.0.0.1:8080/proxy/5173/?a="b"', 'NONCE123', 'vscode-resource:');
  assert.match(html, /<iframe id="app" src="http:\/\/127\.0\.0\.1:8080\/proxy\/5173\/\?a=&#34;b&#34;"/);
  assert.match(html, /frame-src http:\/\/127\.0\.0\.1:8080 /);
  assert.match(html, /script-src &#39;nonce-NONCE123&#39;/);
  assert.doesNotMatch(html, /<script>/);
});

test('results: errors', () => {
  assert.equal(isCancelled({ code: -32800, message: 'x' }), true);
  assert.equal(errorMessage({ code: -32800, message: 'x' }), 'cancelled');
  assert.equal(
    errorMessage({ code: -32803, message: 'builder.sandbox.create is not available yet in builder-lsp 0.1.0' }),
    'builder.sandbox.create is not available yet in builder-lsp 0.1.0',
  );
  assert.match(errorMessage({ code: -32601, message: 'unknown command `builder.x`' }), /older than the extension/);
  assert.equal(errorMessage(new Error('spawn ENOENT')), 'spawn ENOENT');
});

test('deltas: header per task, text appended verbatim, junk ignored', () => {
  let out = '';
  const started: string[] = [];
  const w = new DeltaWriter(
    (s) => (out += s),
    (id) => started.push(id),
  );
  w.write({ taskId: 't1', text: '<file path="a">' });
  w.write({ taskId: 't1', text: 'x</file>' });
  w.write({ taskId: 't2', text: 'y' });
  w.write({ taskId: 't2' });
  w.write(null);
  assert.equal(out, '── generation t1 ──\n<file path="a">x</file>\n── generation t2 ──\ny');
  assert.deepEqual(started, ['t1', 't2']);
});

// ---------------------------------------------------------------------------------------------
// History and inline completions


const entry = (id: string, source: string, summary: string, files: HistoryEntry['files'] = []): HistoryEntry => ({
  id,
  time: '2026-12-04T20:00:00Z',
  source,
  summary,
  files,
});

test('history: parsing, quick-pick rows, times', () => {
  const h = parseHistory([
    { id: 'c2', time: '2026-12-04T20:00:00Z', source: 'generate', summary: 'a hero', model: 'openai/gpt-4.1', files: [{ path: 'src/Hero.jsx', change: 'created' }, { path: 'src/App.jsx', change: 'updated' }, { path: 'old.css', change: 'deleted' }] },
    { id: '', source: 'apply' },
    'junk',
    { id: 'c1', source: 'apply', summary: '', files: [{ path: '', change: 'created' }] },
  ]);
  assert.deepEqual(
    h.map((e) => e.id),
    ['c2', 'c1'],
  );
  assert.deepEqual(h[1].files, []);
  const now = new Date('2026-12-04T20:05:00Z');
  const rows = historyPickItems(h, now);
  assert.deepEqual(rows[0], { label: 'a hero', description: 'generate · 5 min ago · openai/gpt-4.1', detail: '+src/Hero.jsx ~src/App.jsx -old.css', id: 'c2' });
  assert.equal(rows[1].label, 'apply c1');
  assert.equal(rows[1].detail, 'no files');
  assert.equal(formatTime('2026-12-04T20:04:50Z', now), 'just now');
  assert.equal(formatTime('2026-12-04T17:05:00Z', now), '3 h ago');
  assert.equal(formatTime('2026-12-01T08:30:00Z', now), '2026-12-01 08:30 UTC');
  assert.equal(formatTime('not a time', now), 'not a time');
  const many = Array.from({ length: 8 }, (_, i) => ({ path: `f${i}`, change: 'updated' as const }));
  assert.equal(filesLine(many, 3), '~f0 ~f1 ~f2 +5 more');
});

test('history: Undo Last Generation picks the newest generation still in effect', () => {
  // Newest first, as builder.history answers.
  assert.deepEqual(lastGeneration([]), { later: [] });
  assert.deepEqual(lastGeneration([entry('c1', 'install', 'install zod')]), { later: [] });
  let r = lastGeneration([entry('c3', 'install', 'install zod'), entry('c2', 'generate', 'hero'), entry('c1', 'apply', 'app')]);
  assert.equal(r.target?.id, 'c2');
  assert.deepEqual(r.later.map((e) => e.id), ['c3'], 'the install after it goes too: the user is asked');
  // c2 was undone (c4 = revert c2): the next undo goes to c1, and nothing newer is still in effect.
  r = lastGeneration([entry('c4', 'revert', 'revert c2'), entry('c3', 'install', 'x'), entry('c2', 'generate', 'hero'), entry('c1', 'apply', 'app')]);
  assert.equal(r.target?.id, 'c1');
  assert.deepEqual(r.later, []);
  // A revert of the revert (a redo) brings c2 back.
  r = lastGeneration([entry('c5', 'revert', 'revert c4'), entry('c4', 'revert', 'revert c2'), entry('c2', 'generate', 'hero'), entry('c1', 'apply', 'app')]);
  assert.equal(r.target?.id, 'c2');
  assert.deepEqual(r.later, []);
  // A revert naming no listed checkpoint (history trimmed) is a change like any other.
  r = lastGeneration([entry('c9', 'revert', 'revert c0'), entry('c2', 'generate', 'hero')]);
  assert.equal(r.target?.id, 'c2');
  assert.deepEqual(r.later.map((e) => e.id), ['c9']);
});

test('history: revert summaries, conflicts offered for "Revert Anyway"', () => {
  let r = revertSummary({ filesRestored: ['src/App.jsx'], filesDeleted: ['src/Hero.jsx'], conflicts: [], unchanged: [], applied: true, errors: [], message: 'reverted c1: …' });
  assert.deepEqual(r.summary, { level: 'info', message: 'Reverted 2 files — restored src/App.jsx; deleted src/Hero.jsx', changedFiles: 1 });
  assert.deepEqual(r.conflicts, []);
  r = revertSummary({ filesRestored: [], filesDeleted: [], conflicts: [{ path: 'src/App.jsx', reason: 'changed since the checkpoint' }], unchanged: ['a.css'], applied: false, errors: [] });
  assert.equal(r.summary.level, 'error');
  assert.equal(r.summary.message, 'Nothing reverted — already as before: a.css; changed since, left alone: src/App.jsx (changed since the checkpoint)');
  assert.deepEqual(r.conflicts, ['src/App.jsx']);
  r = revertSummary({ filesRestored: ['a'], filesDeleted: [], conflicts: [], applied: false, errors: ['disk full'] });
  assert.equal(r.summary.level, 'error');
  assert.match(r.summary.message, /disk full/);
  assert.equal(revertSummary(null).summary.message, 'Nothing reverted');
});

test('completions: status item on / off / no model', () => {
  assert.deepEqual(completionView(true, 'ollama/qwen2.5-coder:1.5b'), {
    text: '$(sparkle) Builder',
    tooltip: 'Builder inline completions: on (ollama/qwen2.5-coder:1.5b) — click to turn off',
    active: true,
  });
  assert.equal(completionView(undefined, ' llamacpp/any ').active, true, 'unset enabled means on');
  assert.equal(completionView(false, 'llamacpp/any').active, false);
  assert.match(completionView(false, 'llamacpp/any').text, /circle-slash/);
  assert.equal(completionView(true, '').active, false);
  assert.match(completionView(true, null).tooltip, /no `builder.completion.model`/);
});

test('args: history, diff and revert objects', () => {
  assert.deepEqual(args.historyArgs(), {});
  assert.deepEqual(args.historyArgs('file:///p', 5), { project: 'file:///p', limit: 5 });
  assert.deepEqual(args.diffArgs('c1'), { checkpoint: 'c1' });
  assert.deepEqual(args.revertArgs('c1'), { checkpoint: 'c1' });
  assert.deepEqual(args.revertArgs('c1', 'file:///p', true), { checkpoint: 'c1', force: true, project: 'file:///p' });
});

test('settings: autoFix reaches the server as {mode, maxRounds}', () => {
  const s = toServerSettings((k) => ({ autoFix: { mode: 'on', maxRounds: 3 } })[k as 'autoFix']);
  assert.deepEqual(s.autoFix, { mode: 'on', maxRounds: 3 });
});

test('settings: completion and review reach the server as nested keys', () => {
  const s = toServerSettings((k) => ({ completion: { model: 'compatible/m', enabled: false, debounceMs: null }, review: 'on' })[k as 'review']);
  assert.deepEqual(s.completion, { model: 'compatible/m', enabled: false });
  assert.equal(s.review, 'on');
});

test('saveAfterApply saves exactly the dirty documents the result touched', () => {
  const s = applySummary({ filesCreated: ['src/App.jsx'], filesUpdated: ['./index.html'], message: 'm' });
  assert.deepEqual(s.changedPaths, ['src/App.jsx', './index.html']);
  const docs = [
    { path: '/w/src/App.jsx', dirty: true },
    { path: '/w/index.html', dirty: true },
    { path: '/w/src/other.js', dirty: true },
    { path: '/w/src/App.jsx.bak', dirty: true },
    { path: '/x/src/App.jsx', dirty: true },
  ];
  assert.deepEqual(toSave(s.changedPaths ?? [], '/w/', docs), ['/w/src/App.jsx', '/w/index.html']);
  assert.deepEqual(toSave(s.changedPaths ?? [], '/w', [{ path: '/w/src/App.jsx', dirty: false }]), [], 'a saved document is left alone');
});

test('Builder view: conversation, history, sandbox and provider nodes', () => {
  const now = new Date('2026-12-06T12:00:00Z');
  const conv = conversationNodes({
    currentTopic: 'bakery site',
    messages: [
      { role: 'user', content: 'a hero section', timestamp: '2026-12-06T11:50:00Z', metadata: {} },
      { role: 'assistant', content: 'done', timestamp: '2026-12-06T11:50:05Z', metadata: {} },
      { role: 'user', content: 'make it\nblue', timestamp: '2026-12-06T11:59:50Z', metadata: {} },
    ],
    edits: [
      { userRequest: 'a hero section', editType: 'generate', targetFiles: ['src/Hero.jsx', 'src/App.jsx'], outcome: 'success' },
      { userRequest: 'make it\nblue', editType: 'generate', targetFiles: [], outcome: 'failed', error: 'HTTP 401' },
    ],
  }, now);
  assert.deepEqual(conv.map((n) => n.label), ['Topic: bakery site', 'make it blue', 'a hero section']);
  assert.equal(conv[1].icon, 'error');
  assert.match(conv[1].tooltip ?? '', /error: HTTP 401/);
  assert.equal(conv[2].description, '10 min ago · 2 files');
  assert.deepEqual(conv[2].children?.map((c) => c.label), ['src/Hero.jsx', 'src/App.jsx']);
  assert.match(conversationNodes({})[0].label, /No conversation yet/);

  const hist = historyNodes([{ id: '00002-ab', time: '2026-12-06T11:59:00Z', source: 'generate', summary: 'a hero section', model: 'openai/gpt-4.1', files: [{ path: 'src/Hero.jsx', change: 'created' }] }], now);
  assert.equal(hist[0].contextValue, 'checkpoint');
  assert.equal(hist[0].checkpoint, '00002-ab');
  assert.equal(hist[0].description, '1 min ago · generate · openai/gpt-4.1');
  assert.deepEqual(hist[0].children?.[0], { label: 'src/Hero.jsx', description: 'created', icon: 'diff-added' });
  assert.match(historyNodes([])[0].label, /No checkpoints yet/);
  assert.match(historyNodes(undefined)[0].label, /unavailable/);

  assert.equal(sandboxNodes(noneView(), undefined)[0].command?.command, 'builderLsp.sandboxCreate');
  const running = viewFromStatus({ active: true, provider: 'local', sandboxId: 'local-1', url: 'http://127.0.0.1:5173' });
  const sb = sandboxNodes(running, { running: true, compile: [{ path: 'src/App.jsx', line: 3, column: 1, message: 'Unexpected token' }], runtime: [{ kind: 'error', message: 'boom', path: 'src/Child.jsx', line: 2, stack: 'Error: boom' }], count: 2 });
  assert.deepEqual(sb.map((n) => n.label), ['Running', 'Preview', '2 errors']);
  assert.equal(sb[1].command?.command, 'builderLsp.openPreview');
  assert.deepEqual(sb[2].children?.map((c) => c.description), ['compile · src/App.jsx:3', 'error · src/Child.jsx:2']);
  assert.equal(sandboxNodes(running, { compile: [], runtime: [] })[2].label, 'No errors');

  const prov = providerNodes(parseModelsResult({ defaultModel: 'openai/gpt-4.1', providers: [
    { provider: 'openai', name: 'OpenAI', configured: true, keyPresent: true, keyRequired: true, keySource: 'settings' },
    { provider: 'anthropic', name: 'Anthropic', configured: false, keyPresent: false, keyRequired: true },
    { provider: 'ollama', name: 'Ollama', configured: true, keyPresent: false, keyRequired: false, baseUrl: 'http://127.0.0.1:11434/v1' },
  ] }));
  assert.deepEqual(prov.map((n) => [n.label, n.description]), [
    ['Model: openai/gpt-4.1', 'default'],
    ['OpenAI', 'key from settings'],
    ['Anthropic', 'no key'],
    ['Ollama', 'no key needed · base URL http://127.0.0.1:11434/v1'],
  ]);
  assert.deepEqual(prov[2].command?.arguments, ['anthropic']);

  const html = promptHtml([{ id: 'openai/gpt-4.1', label: 'openai/gpt-4.1' }, { id: 'x/<y>', label: 'x/<y>' }], 'openai/gpt-4.1', 'N1', 'vscode-resource:');
  assert.match(html, /<option value="openai\/gpt-4\.1" selected>/);
  assert.match(html, /<option value="x\/&#60;y&#62;">/);
  assert.match(html, /<textarea id="prompt"/);
});

test('results: a cancelled generation is one short line', () => {
  const s = generateSummary({
    stopReason: 'cancelled',
    message: 'Generation cancelled; 1 file had been applied',
    filesCreated: ['src/Hero.jsx'],
    filesUpdated: [],
    truncated: ['src/App.jsx'],
    filesSkipped: [{ path: 'src/App.jsx', reason: 'truncated: the answer stopped before the closing </file> tag' }],
    errors: ['cancelled'],
    applied: false,
  });
  assert.equal(s.level, 'warning');
  assert.equal(s.message, 'Generation cancelled — kept src/Hero.jsx; not written: src/App.jsx (cut off)');
  assert.deepEqual(s.changedPaths, ['src/Hero.jsx']);
  assert.equal(generateSummary({ stopReason: 'cancelled', errors: ['cancelled'] }).message, 'Generation cancelled — nothing was changed');
  assert.equal(cancelledMessage('builder.generate'), 'Builder: generation cancelled');
  assert.equal(cancelledMessage('builder.sandbox.kill'), 'Builder: sandbox.kill cancelled');
});
