// The extension against the real builder-lsp binary ($BUILDER_LSP_BIN, default
// ../../target/debug/builder-lsp): advertised commands, the settings and argument objects the
// extension builds, progress on the extension's own token, deltas, keys and cancellation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import * as args from '../src/args';
import { PALETTE, serverCommandsUsed } from '../src/commands';
import { connectionSummary, modelPickItems, parseModelsResult } from '../src/models';
import { historyPickItems, lastGeneration, parseHistory, revertSummary } from '../src/history';
import { applySummary, detectSummary, installSummary, killSummary, parseDetect } from '../src/results';
import { viewFromStatus } from '../src/status';
import { initializationOptions, toServerSettings } from '../src/settings';
import { applyEditToDisk, fileUri, LspClient, type Message, RpcError, serverBinary, VSCODE_CAPABILITIES, WITH_INLINE_COMPLETION } from './lsp';

const KEY = 'sk-test-contract-4f1c9a';
const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8'));

/**
 * The `builder` section as the middleware builds it from the contributed defaults (+ overrides),
 * the way VS Code's `get('sandbox')` / `get('completion')` gathers dotted settings into an object.
 */
function settingsFrom(overrides: Record<string, unknown>): Record<string, unknown> {
  const props = pkg.contributes.configuration.properties as Record<string, { default?: unknown }>;
  const get = (k: string): unknown => {
    let v: unknown = props[`builder.${k}`]?.default;
    if (!(`builder.${k}` in props)) {
      const nested: Record<string, unknown> = {};
      for (const [name, p] of Object.entries(props)) {
        if (name.startsWith(`builder.${k}.`)) nested[name.slice(`builder.${k}.`.length)] = p.default;
      }
      v = Object.keys(nested).length ? nested : undefined;
    }
    const o = overrides[k];
    if (o === undefined) return v;
    return o && typeof o === 'object' && v && typeof v === 'object' ? { ...(v as object), ...(o as object) } : o;
  };
  return toServerSettings(get);
}

// A loopback OpenAI-compatible endpoint: streams an answer with two files, or stalls (cancel).
interface Seen {
  auth?: string;
  body?: Record<string, unknown>;
}
const seen: Seen[] = [];
/** Requests to the fake's `POST /v1/completions` (fill-in-the-middle), and closed connections. */
const fimSeen: { body: Record<string, unknown>; closed: boolean }[] = [];
const FIM_TEXT = 'a + b;';
let fake: http.Server;
let fakeUrl = '';
const ANSWER = [
  '<explanation>A tiny app.</explanation>\n',
  '<file path="src/App.jsx">export default function App() {\n',
  '  return <h1>Hello</h1>;\n}\n</file>\n',
  '<file path="src/index.css">h1 { color: red; }\n</file>\n',
];

before(async () => {
  fake = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        // OpenAI's model list (builder.models {list: true}); 401 with OpenAI's body without the key.
        if (req.headers.authorization !== `Bearer ${KEY}`) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: ['gpt-4.1-mini', 'gpt-4.1'].map((id) => ({ id, object: 'model', created: 1744316542, owned_by: 'system' })) }));
        return;
      }
      const body = JSON.parse(raw || '{}') as Record<string, unknown>;
      if (req.method === 'POST' && req.url === '/v1/completions') {
        // OpenAI's (legacy) completions API, streamed: `text_completion` chunks, then [DONE].
        const rec = { body, closed: false };
        fimSeen.push(rec);
        res.on('close', () => (rec.closed = !res.writableFinished));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (text: string, finish: string | null) =>
          res.write(
            `data: ${JSON.stringify({ id: 'cmpl-fim-1', object: 'text_completion', created: 1733000000, model: body.model, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }] })}\n\n`,
          );
        if (String(body.prompt).includes('STALL')) {
          chunk('a', null);
          return; // held open until the server closes it (cancellation)
        }
        chunk(FIM_TEXT.slice(0, 3), null);
        chunk(FIM_TEXT.slice(3), null);
        chunk('', 'stop');
        res.end('data: [DONE]\n\n');
        return;
      }
      seen.push({ auth: req.headers.authorization, body });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const frame = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      const stall = JSON.stringify(body).includes('STALL');
      frame({ choices: [{ delta: { content: ANSWER[0] }, finish_reason: null }] });
      if (stall) {
        // Holds the stream open until the client (the server under test) goes away.
        const t = setInterval(() => res.write(': keep-alive\n\n'), 200);
        res.on('close', () => clearInterval(t));
        return;
      }
      for (const chunk of ANSWER.slice(1)) frame({ choices: [{ delta: { content: chunk }, finish_reason: null }] });
      frame({ choices: [{ delta: {}, finish_reason: 'stop' }] });
      frame({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 20 } });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}/v1`;
});

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
  fake.closeAllConnections();
  fake.close();
});

interface Session {
  c: LspClient;
  dirs: string[];
  commands: string[];
  configRequests: number;
}

interface StartOptions {
  /** Settings overrides (merged into the contributed defaults like VS Code does). */
  settings?: Record<string, unknown>;
  /** Client capabilities (default: VS Code's). */
  capabilities?: unknown;
  /** Accept `workspace/applyEdit` and carry it out on disk, as VS Code does (then Save All). */
  applyEdits?: boolean;
}

async function start(folders = 1, o: StartOptions = {}): Promise<Session & { capabilities: Record<string, unknown> }> {
  const dirs = Array.from({ length: folders }, () => fs.mkdtempSync(path.join(os.tmpdir(), 'builder-vscode-')));
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'builder-vscode-state-'));
  cleanup.push(...dirs, state);
  const session = { dirs, commands: [] as string[], configRequests: 0 } as Session & { capabilities: Record<string, unknown> };
  // An empty environment for keys and models, so only what the extension sends counts.
  const env: NodeJS.ProcessEnv = { BUILDER_STATE_DIR: state, XDG_STATE_HOME: state, XDG_CACHE_HOME: state };
  for (const v of ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GROQ_API_KEY', 'OPENROUTER_API_KEY', 'DEFAULT_AI_MODEL', 'OPENAI_BASE_URL']) {
    env[v] = '';
  }
  session.c = new LspClient(
    serverBinary(),
    {
      configuration: (items) => {
        session.configRequests++;
        return items.map((i) => (i.section === 'builder' ? settingsFrom({ baseUrls: { openai: fakeUrl }, ...o.settings }) : null));
      },
      applyEdit: o.applyEdits ? applyEditToDisk : undefined,
    },
    env,
  );
  const init = initializationOptions(true, { openai: KEY });
  const result = await session.c.request<{ capabilities: { executeCommandProvider?: { commands?: string[] } } & Record<string, unknown> }>('initialize', {
    processId: process.pid,
    clientInfo: { name: 'Visual Studio Code', version: '1.90.0' },
    rootUri: fileUri(dirs[0]),
    workspaceFolders: dirs.map((d, i) => ({ uri: fileUri(d), name: `p${i}` })),
    capabilities: o.capabilities ?? VSCODE_CAPABILITIES,
    initializationOptions: init,
  });
  session.commands = result.capabilities.executeCommandProvider?.commands ?? [];
  session.capabilities = result.capabilities;
  session.c.notify('initialized', {});
  await session.c.waitFor((m) => m.method === 'workspace/configuration', 5000, 'workspace/configuration request');
  // The server applies initializationOptions and workspace/configuration together once the
  // configuration answer is back; commands that arrive before that see default settings. Wait
  // until builder.models shows both layers (the fake's base URL, the key) for the first folder.
  const end = Date.now() + 5000;
  for (;;) {
    const openai = parseModelsResult(await session.c.execute('builder.models', args.modelsArgs(fileUri(dirs[0])))).providers.find(
      (p) => p.provider === 'openai',
    );
    if (openai?.baseUrl === fakeUrl && openai.keyPresent) break;
    if (Date.now() > end) throw new Error(`settings never reached the server: ${JSON.stringify(openai)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return session;
}

function progressOn(c: LspClient, token: string): Message[] {
  return c.notifications.filter((m) => m.method === '$/progress' && (m.params as { token?: string }).token === token);
}

async function codeOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof RpcError) return e.code;
    throw e;
  }
}

test('the server advertises every command the extension calls; every palette command maps to one or is client-only', async () => {
  const s = await start();
  try {
    for (const cmd of serverCommandsUsed()) {
      assert.ok(s.commands.includes(cmd), `server does not advertise ${cmd} (advertised: ${s.commands.join(', ')})`);
    }
    for (const p of PALETTE) {
      assert.ok(
        p.server.length > 0 ? p.server.every((x) => s.commands.includes(x)) : typeof p.clientOnly === 'string' && p.clientOnly.length > 0,
        `${p.title} maps to no advertised server command and is not documented as client-only`,
      );
      // vscode-languageclient registers advertised commands under their own names.
      assert.ok(!s.commands.includes(p.id), `${p.id} would collide with a server command`);
    }
  } finally {
    await s.c.shutdown();
  }
});

test('the settings section the middleware answers is accepted, and keys arrive through initializationOptions only', async () => {
  const s = await start();
  try {
    const models = await s.c.execute('builder.models', args.modelsArgs());
    const warnings = s.c.notifications.filter(
      (m) => m.method === 'window/showMessage' && /settings/.test(JSON.stringify(m.params)),
    );
    assert.deepEqual(warnings, [], 'the server refused part of the settings');
    const parsed = parseModelsResult(models);
    const openai = parsed.providers.find((p) => p.provider === 'openai');
    assert.equal(openai?.keyPresent, true);
    assert.equal(openai?.keySource, 'settings apiKeys.openai');
    assert.equal(openai?.baseUrl, fakeUrl, 'baseUrls from workspace/configuration reached the server');
    assert.ok(!JSON.stringify(models).includes(KEY), 'builder.models never shows a key');
    assert.ok(!s.c.stderr.includes(KEY), 'the server never logs the key');
  } finally {
    await s.c.shutdown();
  }
});

test('the model picker’s listing and Test connection: builder.models {list} with the extension’s arguments', async () => {
  const s = await start();
  try {
    const r = parseModelsResult(await s.c.execute('builder.models', args.modelsListArgs({ provider: 'openai', timeoutMs: 5000 })));
    assert.deepEqual(connectionSummary(r, 'openai').message.replace(/\d+ ms$/, 'N ms'), 'OpenAI: reachable, 2 models, N ms');
    const items = modelPickItems(r).filter((i) => i.kind === 'model').map((i) => i.model);
    assert.deepEqual(items.slice(0, 2), ['openai/gpt-4.1', 'openai/gpt-4.1-mini'], JSON.stringify(items));
    await assert.rejects(s.c.execute('builder.models', args.modelsListArgs({ provider: 'nope' })), (e: unknown) => e instanceof RpcError && e.code === -32602 && /nope/.test(e.message));
  } finally {
    await s.c.shutdown();
  }
});

test('apply with wait + the extension’s own workDoneToken: progress on that token, full result, files on disk', async () => {
  const s = await start();
  try {
    const token = 'builder-vscode/1';
    const answer = ANSWER.join('');
    const r = (await s.c.execute('builder.apply', args.applyArgs(answer), token)) as Record<string, unknown>;
    assert.deepEqual(r.filesCreated, ['src/App.jsx', 'src/index.css']);
    assert.equal(fs.readFileSync(path.join(s.dirs[0], 'src/index.css'), 'utf8'), 'h1 { color: red; }\n');
    // `end` may be written just after the response (separate output paths): wait for it.
    const isEnd = (m: Message) =>
      m.method === '$/progress' && (m.params as { token?: string; value: { kind: string } }).token === token && (m.params as { value: { kind: string } }).value.kind === 'end';
    await s.c.waitFor(isEnd, 5000, `progress end on ${token}`);
    const kinds = progressOn(s.c, token).map((m) => (m.params as { value: { kind: string } }).value.kind);
    assert.equal(kinds[0], 'begin');
    assert.ok(kinds.includes('report'), kinds.join(','));
    assert.equal(kinds[kinds.length - 1], 'end');
  } finally {
    await s.c.shutdown();
  }
});

test('project argument: with two folders the extension names one and the answer lands there', async () => {
  const s = await start(2);
  try {
    const r = (await s.c.execute('builder.apply', args.applyArgs('<file path="b.txt">B</file>', fileUri(s.dirs[1])))) as Record<string, unknown>;
    assert.deepEqual(r.filesCreated, ['b.txt']);
    assert.ok(fs.existsSync(path.join(s.dirs[1], 'b.txt')));
    assert.ok(!fs.existsSync(path.join(s.dirs[0], 'b.txt')));
  } finally {
    await s.c.shutdown();
  }
});

test('every argument object the extension builds is accepted (or the command is "not available yet"), never InvalidParams', async () => {
  const s = await start();
  try {
    const zip = path.join(os.tmpdir(), `builder-vscode-${process.pid}.zip`);
    const calls: [string, unknown, readonly (number | 'ok')[]][] = [
      ['builder.models', args.modelsArgs(), ['ok']],
      ['builder.createZip', { ...(args.zipArgs() as object), output: zip }, ['ok']],
      ['builder.createZip', args.zipArgs(), ['ok']],
      ['builder.conversation.reset', args.resetArgs(), ['ok']],
      ['builder.task.cancel', args.cancelArgs(), ['ok']],
      ['builder.installPackages', args.installArgs({ packages: ['left-pad'], dev: true }), ['ok', -32803]],
      ['builder.detectPackages', args.detectArgs(), ['ok', -32803]],
      ['builder.sandbox.status', args.sandboxArgs(), ['ok', -32803]],
      ['builder.sandbox.kill', args.sandboxArgs(), ['ok', -32803]],
      ['builder.sandbox.status', args.sandboxArgs(fileUri(s.dirs[0])), ['ok', -32803]],
      ['builder.history', args.historyArgs(), ['ok']],
      ['builder.history', args.historyArgs(fileUri(s.dirs[0]), 5), ['ok']],
    ];
    for (const [cmd, a, allowed] of calls) {
      const code = await codeOf(s.c.execute(cmd, a));
      assert.ok(allowed.includes(code), `${cmd} ${JSON.stringify(a)} → ${code}`);
    }
    assert.equal(await codeOf(s.c.execute('builder.apply', { response: 'x', bogus: 1 })), -32602, 'the check above can fail');
    fs.rmSync(zip, { force: true });
  } finally {
    await s.c.shutdown();
  }
});

test('package and sandbox results read as the extension expects (when the server implements them)', async (t) => {
  const s = await start();
  try {
    // `left-pad` is declared, so installing it needs no package manager run; `zod` is imported
    // but not declared.
    fs.writeFileSync(path.join(s.dirs[0], 'package.json'), JSON.stringify({ name: 'x', dependencies: { 'left-pad': '^1.3.0' } }));
    fs.mkdirSync(path.join(s.dirs[0], 'node_modules', 'left-pad'), { recursive: true });
    fs.writeFileSync(path.join(s.dirs[0], 'node_modules', 'left-pad', 'package.json'), JSON.stringify({ name: 'left-pad', version: '1.3.0' }));
    fs.mkdirSync(path.join(s.dirs[0], 'src'));
    fs.writeFileSync(path.join(s.dirs[0], 'src', 'main.jsx'), "import { z } from 'zod';\nimport pad from 'left-pad';\nexport const x = [z, pad];\n");
    let implemented = 0;
    const run = async (cmd: string, a: unknown, check: (r: unknown) => void) => {
      try {
        check(await s.c.execute(cmd, a));
        implemented++;
      } catch (e) {
        if (!(e instanceof RpcError) || e.code !== -32803 || !/not available yet/.test(e.message)) throw e;
      }
    };
    await run('builder.installPackages', args.installArgs({ packages: ['left-pad'], dev: false }), (r) => {
      // Declared and present: a server may skip the package manager or run it (it then finds
      // nothing to do); either way the summary names the package and no failure.
      assert.match(installSummary(r).message, /(already )?installed left-pad/);
      assert.equal(installSummary(r).level, 'info');
    });
    await run('builder.detectPackages', args.detectArgs(), (r) => {
      const d = parseDetect(r);
      assert.deepEqual(d.packages, ['zod']);
      assert.match(detectSummary(d).message, /missing: zod/);
    });
    await run('builder.sandbox.status', args.sandboxArgs(), (r) => {
      assert.equal(viewFromStatus(r).state, 'none');
    });
    await run('builder.sandbox.kill', args.sandboxArgs(), (r) => {
      assert.equal(killSummary(r).message, 'No sandbox was running');
    });
    if (implemented === 0) t.diagnostic('this server answers "not available yet" for packages and sandboxes');
  } finally {
    await s.c.shutdown();
  }
});

test('generate: deltas reach the output channel handler, progress shows on the token, key sent as Bearer', async () => {
  const s = await start();
  try {
    const token = 'builder-vscode/2';
    const r = (await s.c.execute(
      'builder.generate',
      args.generateArgs({ prompt: 'a tiny app', model: 'openai/gpt-4.1' }),
      token,
      30000,
    )) as Record<string, unknown>;
    assert.deepEqual(r.errors, []);
    assert.deepEqual([...(r.filesCreated as string[])].sort(), ['src/App.jsx', 'src/index.css']);
    assert.equal(seen[seen.length - 1].auth, `Bearer ${KEY}`);
    const deltas = s.c.notifications.filter((m) => m.method === 'builder/generationDelta').map((m) => m.params as { taskId: string; text: string });
    assert.ok(deltas.length > 0, 'no builder/generationDelta although streamDeltas: true');
    assert.equal(deltas.map((d) => d.text).join(''), ANSWER.join(''));
    assert.equal(new Set(deltas.map((d) => d.taskId)).size, 1);
    assert.ok(progressOn(s.c, token).some((m) => (m.params as { value: { kind: string } }).value.kind === 'begin'));
  } finally {
    await s.c.shutdown();
  }
});

test('cancel from the progress notification: window/workDoneProgress/cancel stops a waiting generate, which still answers', async () => {
  const s = await start();
  try {
    const token = 'builder-vscode/3';
    const pending = s.c.execute('builder.generate', args.generateArgs({ prompt: 'STALL please', model: 'openai/gpt-4.1' }), token, 15000);
    await s.c.waitFor((m) => m.method === 'builder/generationDelta', 10000, 'first delta');
    const t0 = Date.now();
    s.c.notify('window/workDoneProgress/cancel', { token });
    const r = (await pending) as Record<string, unknown>;
    assert.ok(Date.now() - t0 < 3000, `cancel took ${Date.now() - t0} ms (the extension falls back to $/cancelRequest after 3 s)`);
    assert.equal(r.stopReason, 'cancelled');
    assert.deepEqual(r.filesCreated, []);
  } finally {
    await s.c.shutdown();
  }
});

// ---------------------------------------------------------------------------------------------
// Inline completions (issue 14) and history (issue 12)

type InlineAnswer = { items: { insertText: string; range?: { start: { line: number; character: number }; end: { line: number; character: number } } }[] };

/** Opens `rel` in the first folder with `text`, as the language client does on didOpen. */
function openDoc(s: Session, rel: string, text: string): string {
  const file = path.join(s.dirs[0], rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  const uri = fileUri(file);
  s.c.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'javascript', version: 1, text } });
  return uri;
}

const completionSettings = (extra: Record<string, unknown> = {}) => ({
  baseUrls: { openai: fakeUrl, compatible: fakeUrl },
  completion: { model: 'compatible/fim-test', ...extra },
});

test('inline completions: the declared capability gets the provider; builder.completion.model reaches the FIM endpoint; items at the cursor', async () => {
  const plain = await start();
  try {
    assert.equal(plain.capabilities.inlineCompletionProvider, undefined, 'not advertised without the client capability (the check below can fail)');
  } finally {
    await plain.c.shutdown();
  }
  const s = await start(1, { capabilities: WITH_INLINE_COMPLETION, settings: completionSettings() });
  try {
    assert.ok(s.capabilities.inlineCompletionProvider, `inlineCompletionProvider advertised: ${JSON.stringify(s.capabilities)}`);
    const text = 'export function add(a, b) {\n  return \n}\n';
    const uri = openDoc(s, 'src/add.js', text);
    const before = fimSeen.length;
    // vscode-languageclient 9 passes VS Code's own trigger kind through (Automatic = 1, Invoke = 0).
    const r = await s.c.request<InlineAnswer>('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line: 1, character: 9 },
      context: { triggerKind: 1 },
    });
    assert.equal(r.items.length, 1, JSON.stringify(r));
    assert.equal(r.items[0].insertText, FIM_TEXT);
    assert.deepEqual(r.items[0].range, { start: { line: 1, character: 9 }, end: { line: 1, character: 9 } });
    assert.equal(fimSeen.length, before + 1, 'one request to POST /v1/completions');
    const body = fimSeen[fimSeen.length - 1].body;
    assert.equal(body.model, 'fim-test');
    assert.equal(body.stream, true);
    assert.ok(String(body.prompt).endsWith('export function add(a, b) {\n  return '), JSON.stringify(body.prompt));
    assert.ok(String(body.suffix).startsWith('\n}'), JSON.stringify(body.suffix));
    // VS Code's Invoke (0, out of LSP's range) is accepted too; the same prefix comes from the cache.
    const again = await s.c.request<InlineAnswer>('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line: 1, character: 9 },
      context: { triggerKind: 0 },
    });
    assert.equal(again.items[0]?.insertText, FIM_TEXT);
    assert.equal(fimSeen.length, before + 1, 'answered from the cache');
  } finally {
    await s.c.shutdown();
  }
});

test('inline completions: the toggle off (completion.enabled false) asks nothing; VS Code cancelling closes the model request', async () => {
  const off = await start(1, { capabilities: WITH_INLINE_COMPLETION, settings: completionSettings({ enabled: false }) });
  try {
    const uri = openDoc(off, 'src/a.js', 'const x = \n');
    const before = fimSeen.length;
    const r = await off.c.request<InlineAnswer>('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: 0, character: 10 }, context: { triggerKind: 1 } });
    assert.deepEqual(r.items, []);
    assert.equal(fimSeen.length, before, 'no request to the model while the toggle is off');
  } finally {
    await off.c.shutdown();
  }
  const s = await start(1, { capabilities: WITH_INLINE_COMPLETION, settings: completionSettings() });
  try {
    const uri = openDoc(s, 'src/b.js', '// STALL\nconst y = \n');
    const before = fimSeen.length;
    const pending = s.c.request<InlineAnswer>('textDocument/inlineCompletion', { textDocument: { uri }, position: { line: 1, character: 10 }, context: { triggerKind: 1 } });
    const outcome = codeOf(pending);
    const end = Date.now() + 5000;
    while (fimSeen.length === before && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fimSeen.length, before + 1, 'the model was asked');
    // What the client sends when VS Code's cancellation token fires.
    s.c.notify('$/cancelRequest', { id: pending.id });
    const rec = fimSeen[fimSeen.length - 1];
    const t0 = Date.now();
    while (!rec.closed && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    assert.ok(rec.closed, 'the upstream connection was closed after $/cancelRequest');
    const code = await outcome;
    assert.ok(code === -32800 || code === 'ok', `cancelled request answered with ${code}`);
  } finally {
    await s.c.shutdown();
  }
});

test('history: apply → Show History lists it → Show Diff → Undo Last Generation restores the bytes and deletes created files', async () => {
  const s = await start(1, { applyEdits: true });
  try {
    const dir = s.dirs[0];
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    const oldCss = 'h1 { color: blue; }\r\n/* keep these bytes */\n';
    fs.writeFileSync(path.join(dir, 'src/index.css'), oldCss);
    const applied = (await s.c.execute('builder.apply', args.applyArgs(ANSWER.join('')))) as Record<string, unknown>;
    assert.deepEqual(applySummary(applied).changedFiles, 2);
    assert.equal(typeof applied.checkpoint, 'string', 'the result names its checkpoint (the Undo button reverts it)');
    assert.equal(fs.readFileSync(path.join(dir, 'src/index.css'), 'utf8'), 'h1 { color: red; }\n');

    const entries = parseHistory(await s.c.execute('builder.history', args.historyArgs()));
    assert.equal(entries[0].id, applied.checkpoint);
    assert.equal(entries[0].source, 'apply');
    const row = historyPickItems(entries)[0];
    assert.match(row.detail, /\+src\/App\.jsx/);
    assert.match(row.detail, /~src\/index\.css/);
    assert.match(row.description, /^apply · just now/);

    const diff = (await s.c.execute('builder.diff', args.diffArgs(entries[0].id))) as { diff: string };
    assert.match(diff.diff, /^\+h1 \{ color: red; \}$/m);
    assert.match(diff.diff, /^-h1 \{ color: blue; \}/m);
    assert.match(diff.diff, /\+\+\+ b\/src\/App\.jsx/);

    const { target, later } = lastGeneration(entries);
    assert.equal(target?.id, applied.checkpoint);
    assert.deepEqual(later, []);
    const raw = await s.c.execute('builder.revert', args.revertArgs(target!.id));
    const r = revertSummary(raw);
    assert.equal(r.summary.level, 'info', JSON.stringify(raw));
    assert.equal((raw as { appliedVia?: string }).appliedVia, 'workspaceEdit', 'landed as one workspace edit, as in VS Code');
    assert.match(r.summary.message, /restored src\/index\.css; deleted src\/App\.jsx/);
    assert.equal(fs.readFileSync(path.join(dir, 'src/index.css'), 'utf8'), oldCss, 'byte-identical to before');
    assert.ok(!fs.existsSync(path.join(dir, 'src/App.jsx')), 'the created file is gone');

    // A second Undo goes further back, past the revert: here there is nothing left to undo.
    const after = parseHistory(await s.c.execute('builder.history', args.historyArgs()));
    assert.equal(after[0].source, 'revert');
    assert.equal(lastGeneration(after).target, undefined);
  } finally {
    await s.c.shutdown();
  }
});

test('history: a file edited since the generation is a conflict; "Revert Anyway" (force) takes it back too', async () => {
  const s = await start(1, { applyEdits: true });
  try {
    const dir = s.dirs[0];
    const applied = (await s.c.execute('builder.apply', args.applyArgs(ANSWER.join('')))) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, 'src/App.jsx'), 'edited by hand\n');
    const first = revertSummary(await s.c.execute('builder.revert', args.revertArgs(String(applied.checkpoint))));
    assert.deepEqual(first.conflicts, ['src/App.jsx']);
    assert.notEqual(first.summary.level, 'info');
    assert.ok(fs.existsSync(path.join(dir, 'src/App.jsx')), 'a conflicting file is left alone');
    const forced = revertSummary(await s.c.execute('builder.revert', args.revertArgs(String(applied.checkpoint), undefined, true)));
    assert.deepEqual(forced.conflicts, []);
    assert.ok(!fs.existsSync(path.join(dir, 'src/App.jsx')));
    assert.ok(!fs.existsSync(path.join(dir, 'src/index.css')));
  } finally {
    await s.c.shutdown();
  }
});
