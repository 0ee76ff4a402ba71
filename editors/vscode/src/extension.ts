// VS Code glue: starts builder-lsp, registers the palette commands, streams model text to the
// "Builder" output channel, keeps the sandbox and completion status-bar items current, and shows
// the project's history (quick pick, read-only diffs, revert). The decisions live in
// the small pure modules beside this file (tested without VS Code).

import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  CancellationTokenSource,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
  type WorkDoneProgressEnd,
} from 'vscode-languageclient/node';

import * as args from './args';
import { PALETTE } from './commands';
import { completionView, TOGGLE_COMMAND } from './completion';
import { historyPickItems, lastGeneration, parseHistory, revertSummary, type HistoryEntry } from './history';
import { connectionSummary, modelPickItems, parseModelsResult, testPickItems, validateModelId, type ModelItem, type ModelsResult } from './models';
import { parsePackageInput, validatePackageInput } from './packages';
import { KEYED_PROVIDERS, PROVIDER_IDS, secretKey } from './providers';
import { redact } from './redact';
import {
  applySummary,
  cancelledMessage,
  cancelSummary,
  DeltaWriter,
  detectSummary,
  errorMessage,
  generateSummary,
  installLog,
  installSummary,
  isCancelled,
  killSummary,
  parseDetect,
  plural,
  sandboxCreateSummary,
  type Summary,
  toSave,
  zipSummary,
} from './results';
import { bundledServerPath, describeSource, ensureExecutable, resolveServerPath, resolveWithRetry, type RetryResolved } from './serverPath';
import { initializationOptions, needsRestart, toServerSettings } from './settings';
import { noneView, POLL_SECONDS, shouldPoll, startingView, statusMessage, viewFromStatus, type SandboxView } from './status';
import { localhostForm, panelHtml, previewBase, PROBE_PORT, shouldProbe } from './preview';
import { conversationNodes, historyNodes, promptHtml, providerNodes, sandboxNodes, type ViewNode } from './view';

const LANGUAGES = ['javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'css', 'html', 'json'];
const LAST_MODEL = 'builder.lastModel';
/** Scheme of the read-only documents that show a checkpoint's diff. */
const DIFF_SCHEME = 'builder-diff';

let client: LanguageClient | undefined;
let ctx: vscode.ExtensionContext;
let output: vscode.OutputChannel;
let traceChannel: vscode.OutputChannel;
/** Key values currently handed to the server, masked in every log line. */
let knownSecrets: string[] = [];
let sandbox: SandboxStatusItem;
/** Diff texts by document URI, served read-only by the `builder-diff:` content provider. */
const diffs = new Map<string, string>();
let startError: string | undefined;
let progressSeq = 0;
let lifecycle: Promise<void> = Promise.resolve();
/**
 * Resolves once the server has asked for its settings (plus a moment to apply them): builder-lsp
 * applies initializationOptions (the keys) together with workspace/configuration, so a command
 * sent before that sees default settings. Resolves after 3 s regardless.
 */
let configured: Promise<void> = Promise.resolve();
/** Which keys the running server was started with (compared in memory only, never logged). */
let startedWithKeys = '';

function keysFingerprint(keys: Record<string, string | undefined>): string {
  return JSON.stringify(Object.entries(keys).filter(([, v]) => v));
}

/** An OutputChannel that masks API keys before anything reaches the real channel. */
function redacting(inner: vscode.OutputChannel): vscode.OutputChannel {
  return {
    name: inner.name,
    append: (v: string) => inner.append(redact(v, knownSecrets)),
    appendLine: (v: string) => inner.appendLine(redact(v, knownSecrets)),
    replace: (v: string) => inner.replace(redact(v, knownSecrets)),
    clear: () => inner.clear(),
    show: (a?: boolean | vscode.ViewColumn, b?: boolean) =>
      typeof a === 'boolean' ? inner.show(a) : inner.show(a, b),
    hide: () => inner.hide(),
    dispose: () => undefined, // owned by the extension, not by a client that gets restarted
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  ctx = context;
  output = vscode.window.createOutputChannel('Builder');
  traceChannel = vscode.window.createOutputChannel('Builder Trace');
  context.subscriptions.push(output, traceChannel);
  sandbox = new SandboxStatusItem();
  context.subscriptions.push(sandbox, new CompletionStatusItem());
  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, {
      provideTextDocumentContent: (uri) => diffs.get(uri.toString()) ?? '',
    }),
  );

  const handlers: Record<string, () => Promise<unknown> | unknown> = {
    'builderLsp.generate': generate,
    'builderLsp.applyClipboard': applyClipboard,
    'builderLsp.sandboxCreate': sandboxCreate,
    'builderLsp.openPreview': openPreview,
    'builderLsp.sandboxStatus': sandboxStatus,
    'builderLsp.sandboxKill': sandboxKill,
    'builderLsp.installPackages': installPackages,
    'builderLsp.detectPackages': detectPackages,
    'builderLsp.exportZip': exportZip,
    'builderLsp.resetConversation': resetConversation,
    'builderLsp.cancelTask': cancelTask,
    'builderLsp.showHistory': showHistory,
    'builderLsp.undoLastGeneration': () => undoLastGeneration(),
    'builderLsp.toggleCompletions': toggleCompletions,
    'builderLsp.setApiKey': setApiKey,
    'builderLsp.showOutput': () => output.show(true),
    'builderLsp.restartServer': () => restartClient(true),
  };
  for (const c of PALETTE) {
    const h = handlers[c.id];
    if (!h) throw new Error(`no handler for ${c.id}`);
    context.subscriptions.push(vscode.commands.registerCommand(c.id, h));
  }

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('builder')) return;
      // No server because the last start failed (not found, crashed): any Builder change looks
      // again, since remote windows can deliver the settings late and in more than one event.
      if (needsRestart((s) => e.affectsConfiguration(s)) || (!client && startError !== undefined)) {
        await restartClient(false);
      } else if (client?.isRunning()) {
        // Pull model: the server re-reads `workspace/configuration`, answered by the middleware.
        await client.sendNotification('workspace/didChangeConfiguration', { settings: null });
      }
    }),
    // Keys changed elsewhere (another window): restart only if what the server has is stale.
    context.secrets.onDidChange(async (e) => {
      if (e.key.startsWith('builder.apiKey.') && keysFingerprint(await readKeys()) !== startedWithKeys) {
        await restartClient(false);
      }
    }),
  );

  registerViews(context);
  lifecycle = startClient();
  await lifecycle;
  refreshViews();
}

export async function deactivate(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// The language client

async function readKeys(): Promise<Record<string, string | undefined>> {
  const keys: Record<string, string | undefined> = {};
  for (const p of PROVIDER_IDS) keys[p] = await ctx.secrets.get(secretKey(p));
  return keys;
}

function builderConfig(scope?: vscode.Uri): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('builder', scope);
}

/** Longest wait for the server's `initialize` answer before `lifecycle` moves on. */
const START_TIMEOUT_MS = 30_000;
/** Restarts waiting on `lifecycle`: a failed lookup then leaves the error to the next one. */
let queuedRestarts = 0;
/** An error about starting was shown: the next successful start says so too. */
let startErrorShown = false;

/**
 * Starts the server. Never rejects and never hangs past START_TIMEOUT_MS (plus the ~3 s lookup),
 * so a failed or stuck start cannot block the restarts queued behind it on `lifecycle`.
 */
async function startClient(): Promise<void> {
  try {
    await startClientOnce();
  } catch (e) {
    startError = `builder-lsp failed to start: ${errorMessage(e)}`;
    output.appendLine(`[builder] ${startError}`);
    startErrorShown = true;
    void vscode.window.showErrorMessage(`Builder: ${startError}`, 'Show Output').then((b) => b && output.show());
  }
}

/**
 * Looks the binary up from scratch: `builder.serverPath` is read afresh for every attempt (never
 * cached at activation), and a failed lookup is retried for ~3 s, since remote and web windows
 * (code-server) can hand the extension host its settings after activation.
 */
async function findServer(): Promise<RetryResolved> {
  const bundled = bundledServerPath(ctx.extensionPath);
  // vsce keeps the bundled binary's mode, but an unzip elsewhere may not: put the x bits back.
  if (ensureExecutable(bundled, { statSync: (p) => fs.statSync(p), chmodSync: (p, m) => fs.chmodSync(p, m) })) {
    output.appendLine(`[builder] made ${bundled} executable`);
  }
  return resolveWithRetry(
    () => builderConfig().get<string>('serverPath'),
    (setting) => {
      const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
      return resolveServerPath(setting, process.env, isExecutable, process.platform, folders, bundled);
    },
    {
      onRetry: (attempt, _ms, last) => {
        if (attempt === 1) output.appendLine(`[builder] ${last.message} Looking again for ~3 s (the settings may still be on their way).`);
      },
    },
  );
}

async function startClientOnce(): Promise<void> {
  const resolved = await findServer();
  if (!resolved.ok) {
    startError = resolved.message;
    output.appendLine(`[builder] ${resolved.message}`);
    // A restart is already waiting (e.g. the settings just changed): it looks again and reports.
    if (queuedRestarts > 0) return;
    startErrorShown = true;
    void showMissingServer(resolved.message);
    return;
  }
  output.appendLine(`[builder] using ${resolved.path} (found through ${describeSource(resolved.source)}${resolved.attempts > 1 ? `, at lookup ${resolved.attempts}` : ''})`);
  startError = undefined;
  const keys = await readKeys();
  const init = initializationOptions(builderConfig().get('streamDeltas'), keys);
  knownSecrets = Object.values(init.apiKeys ?? {});
  startedWithKeys = keysFingerprint(keys);

  const serverOptions: ServerOptions = {
    command: resolved.path,
    transport: TransportKind.stdio, // adds `--stdio`
    options: { env: { ...process.env } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: 'file', language })),
    outputChannel: redacting(output),
    traceOutputChannel: redacting(traceChannel),
    initializationOptions: init,
    middleware: {
      // Ghost text: nothing is asked while the toggle is off (the server also checks
      // `completion.enabled`, but a request per keystroke for nothing is waste).
      provideInlineCompletionItems: (document, position, context, token, next) =>
        builderConfig(document.uri).get<boolean>('completion.enabled') === false ? undefined : next(document, position, context, token),
      workspace: {
        // The server asks for section `builder`; answer with the allow-listed server settings
        // only (never apiKeys, never client-only settings).
        configuration: async (params, token, next) => {
          markConfigured();
          const base = await next(params, token);
          if (!Array.isArray(base)) return base;
          return params.items.map((item, i) => {
            if (item.section !== 'builder') return base[i];
            const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
            const cfg = builderConfig(scope);
            return toServerSettings((k) => cfg.get(k));
          });
        },
      },
    },
  };
  let markConfigured: () => void = () => undefined;
  configured = new Promise<void>((resolve) => {
    markConfigured = () => setTimeout(resolve, 50);
    setTimeout(resolve, 3000); // a server that never asks must not block commands
  });
  const c = new LanguageClient('builder', 'Builder', serverOptions, clientOptions);
  // vscode-languageclient 9 ships textDocument/inlineCompletion (LSP 3.18) as its one proposed
  // feature: it declares the capability (so the server advertises the provider) and registers
  // an InlineCompletionItemProvider for the document selector.
  c.registerProposedFeatures();
  const deltas = new DeltaWriter(
    (s) => output.append(redact(s, knownSecrets)),
    () => output.show(true),
  );
  c.onNotification('builder/generationDelta', (p: unknown) => deltas.write(p));
  client = c;
  const started = (): void => {
    startError = undefined;
    output.appendLine(`[builder] started ${resolved.path} (${resolved.source})`);
    if (startErrorShown) {
      startErrorShown = false;
      void vscode.window.showInformationMessage(`Builder: server started (${resolved.path})`);
    }
    void sandbox.refresh(true);
  };
  const failed = (e: unknown): void => {
    // A client whose start failed is dropped: the next start begins from nothing.
    if (client === c) client = undefined;
    startError = `builder-lsp (${resolved.path}) failed to start: ${errorMessage(e)}`;
    output.appendLine(`[builder] ${startError}`);
    startErrorShown = true;
    void vscode.window.showErrorMessage(startError, 'Show Output').then((b) => b && output.show());
  };
  const starting = c.start();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    starting.then(
      () => ({ kind: 'started' as const }),
      (e: unknown) => ({ kind: 'failed' as const, e }),
    ),
    new Promise<{ kind: 'slow' }>((r) => (timer = setTimeout(() => r({ kind: 'slow' }), START_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome.kind === 'started') {
    started();
    return;
  }
  if (outcome.kind === 'failed') {
    failed(outcome.e);
    return;
  }
  // No answer yet (a loaded machine): `lifecycle` moves on so Restart Server is not stuck behind
  // it; a late start is kept while it is still the current client, and stopped otherwise.
  startError = `builder-lsp (${resolved.path}) has not answered after ${START_TIMEOUT_MS / 1000} s (Builder: Restart Server starts it again)`;
  output.appendLine(`[builder] ${startError}; still waiting`);
  void starting.then(
    () => {
      if (client === c) started();
      else void c.stop().catch(() => undefined);
    },
    (e: unknown) => {
      if (client === c) failed(e);
    },
  );
}

/**
 * Starts and restarts run one after another on `lifecycle`, so two quick triggers never leave
 * two servers running, and commands wait for a restart in progress (ensureClient).
 */
function restartClient(announce: boolean): Promise<void> {
  queuedRestarts++;
  const run = (): Promise<void> => {
    queuedRestarts--;
    return doRestart(announce);
  };
  // Runs after the previous step whether it resolved or rejected (a rejected `lifecycle` must not
  // swallow this restart), and every restart looks the binary up from scratch.
  lifecycle = lifecycle.then(run, run).catch(() => undefined);
  return lifecycle;
}

async function doRestart(announce: boolean): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop().catch(() => undefined);
  sandbox.set(noneView('server restarted'));
  await startClient();
  if (announce && currentClient()?.isRunning()) void vscode.window.showInformationMessage('Builder: server restarted');
}

/** The client as it is now (a function, so narrowing across awaits does not apply). */
function currentClient(): LanguageClient | undefined {
  return client;
}

function isExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function showMissingServer(message: string): Promise<void> {
  const open = 'Open Settings';
  const copy = 'Copy Install Command';
  const pick = await vscode.window.showErrorMessage(`Builder: ${message}`, open, copy);
  if (pick === open) await vscode.commands.executeCommand('workbench.action.openSettings', 'builder.serverPath');
  if (pick === copy) await vscode.env.clipboard.writeText('cargo install builder-lsp');
}

/** The running client, or undefined after telling the user why there is none. */
async function ensureClient(): Promise<LanguageClient | undefined> {
  const running = (): LanguageClient | undefined => (client?.isRunning() ? client : undefined);
  // A start or restart in progress (e.g. right after Builder: Set API Key…) finishes first.
  await lifecycle;
  await configured;
  if (running()) return running();
  if (client && startError === undefined) {
    for (let i = 0; i < 50 && !running(); i++) await new Promise((r) => setTimeout(r, 100));
    if (running()) return running();
  }
  await showMissingServer(startError ?? 'the builder-lsp server is not running (Builder: Restart Server).');
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Calling server commands

interface CallOptions {
  /** Progress notification title; absent → a quick call with no progress UI. */
  title?: string;
  /** Do not show errors (background status checks). */
  quiet?: boolean;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; cancelled: boolean; message: string };

/**
 * Runs a server command. With a title: `wait: true` semantics inside `window.withProgress`, our
 * own `workDoneToken` so the server's `$/progress` messages show there, and Cancel →
 * `window/workDoneProgress/cancel` (partial result comes back), then `$/cancelRequest` after 3 s.
 */
async function call<T = unknown>(command: string, a: args.Args, opts: CallOptions = {}): Promise<Outcome<T>> {
  const c = await (opts.quiet ? Promise.resolve(client?.isRunning() ? client : undefined) : ensureClient());
  if (!c) return { ok: false, cancelled: false, message: startError ?? 'server not running' };
  const send = async (progress?: vscode.Progress<{ message?: string; increment?: number }>, ui?: vscode.CancellationToken) => {
    const token = progress ? `builder-vscode/${++progressSeq}` : undefined;
    const hard = new CancellationTokenSource();
    const subs: { dispose(): void }[] = [];
    if (token && progress) {
      let last = 0;
      subs.push(
        c.onProgress(WorkDoneProgress.type, token, (v: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
          if (v.kind === 'end') return;
          const pct = typeof v.percentage === 'number' ? v.percentage : undefined;
          const increment = pct !== undefined && pct > last ? pct - last : undefined;
          if (pct !== undefined) last = Math.max(last, pct);
          progress.report({ message: v.message, increment });
        }),
      );
    }
    if (ui) {
      subs.push(
        ui.onCancellationRequested(() => {
          if (token) void c.sendNotification('window/workDoneProgress/cancel', { token });
          const t = setTimeout(() => hard.cancel(), token ? 3000 : 0);
          subs.push({ dispose: () => clearTimeout(t) });
        }),
      );
    }
    try {
      return (await c.sendRequest(
        ExecuteCommandRequest.type,
        { command, arguments: [a], workDoneToken: token },
        hard.token,
      )) as T;
    } finally {
      for (const s of subs) s.dispose();
      hard.dispose();
    }
  };
  try {
    const value = opts.title
      ? await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: opts.title, cancellable: true },
          (p, t) => send(p, t),
        )
      : await send();
    return { ok: true, value };
  } catch (e) {
    const cancelled = isCancelled(e);
    const message = errorMessage(e);
    if (!opts.quiet) {
      if (cancelled) void vscode.window.showWarningMessage(cancelledMessage(command));
      else void vscode.window.showErrorMessage(`Builder: ${message}`);
    }
    return { ok: false, cancelled, message };
  }
}

async function show(s: Summary, ...buttons: string[]): Promise<string | undefined> {
  const text = `Builder: ${s.message}`;
  if (s.level === 'error') return vscode.window.showErrorMessage(text, ...buttons);
  if (s.level === 'warning') return vscode.window.showWarningMessage(text, ...buttons);
  return vscode.window.showInformationMessage(text, ...buttons);
}

/** The `project` argument (a folder URI) when several folders are open; undefined → none needed. */
async function project(): Promise<{ value?: string } | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const active = vscode.window.activeTextEditor?.document.uri;
  const activeFolder = active ? vscode.workspace.getWorkspaceFolder(active)?.uri.toString() : undefined;
  const choice = args.chooseProject(
    folders.map((f) => f.uri.toString()),
    activeFolder,
  );
  if (!choice.ask) return { value: choice.project };
  const f = await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which project?' });
  return f ? { value: f.uri.toString() } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Palette commands

async function pickModel(p: string | undefined): Promise<{ model?: string } | undefined> {
  const res = await call('builder.models', args.modelsArgs(p));
  if (!res.ok) return undefined;
  let models = parseModelsResult(res.value);
  const lastUsed = ctx.workspaceState.get<string>(LAST_MODEL);
  type QItem = vscode.QuickPickItem & { item: ModelItem };
  const toQ = (m: ModelsResult): QItem[] =>
    modelPickItems(m, lastUsed).map((item) => ({ label: item.label, description: item.description, detail: item.detail, item }));
  // The picker opens at once with the configuration; the providers' own model lists (one HTTP
  // request each, a few seconds at most) fill in while it is open.
  const qp = vscode.window.createQuickPick<QItem>();
  qp.title = 'Builder: model';
  qp.placeholder = 'Model for this generation';
  qp.matchOnDescription = true;
  qp.items = toQ(models);
  qp.busy = true;
  let open = true;
  void call('builder.models', args.modelsListArgs({ project: p }), { quiet: true }).then((listed) => {
    if (!open) return;
    qp.busy = false;
    if (!listed.ok) return;
    models = parseModelsResult(listed.value);
    const active = qp.activeItems[0]?.item;
    qp.items = toQ(models);
    const keep = active && qp.items.find((q) => q.item.kind === active.kind && q.item.model === active.model && q.item.provider === active.provider);
    if (keep) qp.activeItems = [keep];
  });
  const picked = await new Promise<QItem | undefined>((resolve) => {
    qp.onDidAccept(() => {
      resolve(qp.selectedItems[0] ?? qp.activeItems[0]);
      qp.hide();
    });
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  open = false;
  qp.dispose();
  if (!picked) return undefined;
  const it = picked.item;
  if (it.kind === 'test') {
    await testConnection(p, models, it.provider);
    return pickModel(p);
  }
  if (it.kind === 'needsKey') {
    await setApiKey(it.provider);
    return undefined;
  }
  if (it.kind === 'custom') {
    const typed = await vscode.window.showInputBox({
      title: 'Builder: model id',
      prompt: 'provider/model',
      value: models.defaultModel ?? '',
      validateInput: validateModelId,
    });
    return typed ? { model: typed.trim() } : undefined;
  }
  return { model: it.model };
}

/** "Test connection…": `builder.models {provider, list: true}` for one provider, then its answer. */
async function testConnection(p: string | undefined, models: ModelsResult, provider?: string): Promise<void> {
  let id = provider;
  if (!id) {
    const choice = await vscode.window.showQuickPick(testPickItems(models), { title: 'Builder: test connection', placeHolder: 'Which provider?' });
    if (!choice) return;
    id = choice.provider;
  }
  const name = models.providers.find((x) => x.provider === id)?.name ?? id;
  const res = await call('builder.models', args.modelsListArgs({ project: p, provider: id, timeoutMs: 5000 }), { title: `Builder: testing ${name}…` });
  if (!res.ok) return;
  const s = connectionSummary(parseModelsResult(res.value), id);
  if (s.level === 'error') void vscode.window.showErrorMessage(`Builder: ${s.message}`);
  else void vscode.window.showInformationMessage(`Builder: ${s.message}`);
}

async function generate(): Promise<void> {
  const p = await project();
  if (!p) return;
  const prompt = await vscode.window.showInputBox({
    title: 'Builder: Generate',
    prompt: 'What should Builder build or change?',
    placeHolder: 'a landing page for a bakery with a menu and opening hours',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'Describe what to build' : undefined),
  });
  if (!prompt) return;
  const m = await pickModel(p.value);
  if (!m) return;
  await runGenerate(prompt, m.model, p.value);
}

/** One generation (from the palette or the Builder view's prompt box), then the views refresh. */
async function runGenerate(prompt: string, model: string | undefined, projectUri: string | undefined): Promise<void> {
  if (model) await ctx.workspaceState.update(LAST_MODEL, model);
  const doc = vscode.window.activeTextEditor?.document;
  const uri = doc && doc.uri.scheme === 'file' && vscode.workspace.getWorkspaceFolder(doc.uri) ? doc.uri.toString() : undefined;
  const res = await call('builder.generate', args.generateArgs({ prompt, model, uri, project: projectUri }), {
    title: `Builder: ${prompt.length > 50 ? `${prompt.slice(0, 50)}…` : prompt}`,
  });
  refreshViews();
  if (!res.ok) return;
  await showWithSave(generateSummary(res.value), checkpointOf(res.value), projectUri);
}

/** Saves the documents the result touched (`builder.saveAfterApply`); true when it did. */
async function saveTouched(s: Summary, projectUri?: string, always = false): Promise<boolean> {
  if (!(always || builderConfig().get<boolean>('saveAfterApply', true)) || !s.changedPaths?.length) return false;
  const root = projectUri ? vscode.Uri.parse(projectUri).fsPath : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root) return false;
  const docs = vscode.workspace.textDocuments.filter((d) => d.uri.scheme === 'file');
  const paths = new Set(toSave(s.changedPaths, root, docs.map((d) => ({ path: d.uri.fsPath, dirty: d.isDirty }))));
  const results = await Promise.all(docs.filter((d) => paths.has(d.uri.fsPath)).map((d) => d.save()));
  return results.every(Boolean);
}

function checkpointOf(result: unknown): string | undefined {
  const c = (result as { checkpoint?: unknown } | null)?.checkpoint;
  return typeof c === 'string' && c !== '' ? c : undefined;
}

/** The result message, with "Save All" when files changed and "Undo" when a checkpoint was recorded. */
async function showWithSave(s: Summary, checkpoint?: string, projectUri?: string): Promise<void> {
  const save = 'Save All';
  const undo = 'Undo';
  const saved = await saveTouched(s, projectUri);
  const pick = await show(s, ...(s.changedFiles && !saved ? [save] : []), ...(checkpoint ? [undo] : []));
  if (pick === save) await vscode.workspace.saveAll(false);
  if (pick === undo && checkpoint) await undoCheckpoint(checkpoint, projectUri);
}

async function applyClipboard(): Promise<void> {
  const text = await vscode.env.clipboard.readText();
  if (!text.trim()) {
    void vscode.window.showWarningMessage('Builder: the clipboard is empty — copy a model answer with <file path="…"> blocks first');
    return;
  }
  const p = await project();
  if (!p) return;
  const res = await call('builder.apply', args.applyArgs(text, p.value), { title: 'Builder: applying answer' });
  refreshViews();
  if (res.ok) await showWithSave(applySummary(res.value), checkpointOf(res.value), p.value);
}

function sandboxProvider(): string {
  return builderConfig().get<string>('sandbox.provider') || 'local';
}

async function sandboxCreate(): Promise<void> {
  const p = await project();
  if (!p) return;
  const provider = sandboxProvider();
  sandbox.set(startingView(provider));
  sandbox.creating = true;
  let res;
  try {
    const base = provider === 'local' ? await proxyBase() : undefined;
    if (base) output.appendLine(`[builder] preview served under ${base} (a path-prefix proxy forwards the port)`);
    res = await call('builder.sandbox.create', args.sandboxCreateArgs(provider, p.value, base), {
      title: `Builder: creating ${provider} sandbox`,
    });
  } finally {
    sandbox.creating = false;
  }
  await sandbox.refresh(true);
  if (!res.ok) return;
  const s = sandboxCreateSummary(res.value);
  // The template's files and package.json land as edits: always saved (never left at 0 bytes).
  await saveTouched(s, p.value, true);
  const where = builderConfig().get<string>('preview.open', 'beside');
  if (s.url && where !== 'off') await showPreview(s.url, where === 'external');
  const pick = await show(s, ...(s.url ? ['Open Preview', 'Open in Browser'] : []));
  if (pick === 'Open Preview' && s.url) await showPreview(s.url, false);
  if (pick === 'Open in Browser' && s.url) await showPreview(s.url, true);
}

/**
 * The `previewBase` for a local sandbox: `builder.preview.proxyBase`, or for `auto` what the
 * editor's port mapping shows (code-server: `/proxy/{{port}}/`), else none.
 */
async function proxyBase(): Promise<string | undefined> {
  const setting = builderConfig().get<string>('preview.proxyBase', 'auto');
  if ((setting ?? 'auto').trim() !== 'auto') return previewBase(setting, undefined);
  if (!shouldProbe(vscode.env.uiKind === vscode.UIKind.Web, process.env)) return undefined;
  try {
    const probe = await vscode.env.asExternalUri(vscode.Uri.parse(`http://localhost:${PROBE_PORT}/`));
    return previewBase('auto', probe.toString(true));
  } catch {
    return undefined;
  }
}

/** The preview's panel beside the editor: one, reused (Open Preview twice shows the same tab). */
let previewPanel: vscode.WebviewPanel | undefined;
let previewTarget: string | undefined;

async function showPreview(url: string, external: boolean): Promise<void> {
  // The editor's form of the loopback URL: forwarded (Remote-SSH, Codespaces) or proxied (web).
  const ext = await vscode.env.asExternalUri(vscode.Uri.parse(localhostForm(url)));
  const target = ext.toString(true);
  output.appendLine(`[builder] preview ${url}${target !== url ? ` → ${target}` : ''}`);
  if (external) {
    await vscode.env.openExternal(ext);
    return;
  }
  if (previewPanel) {
    if (previewTarget !== target) {
      previewTarget = target;
      previewPanel.webview.html = panelHtml(target, nonce(), previewPanel.webview.cspSource);
    } else {
      void previewPanel.webview.postMessage({ type: 'reload' });
    }
    previewPanel.reveal(vscode.ViewColumn.Beside, false);
    return;
  }
  const panel = vscode.window.createWebviewPanel('builderPreview', 'Builder Preview', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false }, {
    enableScripts: true,
    retainContextWhenHidden: true,
  });
  previewPanel = panel;
  previewTarget = target;
  panel.webview.html = panelHtml(target, nonce(), panel.webview.cspSource);
  panel.webview.onDidReceiveMessage((m: { type?: string }) => {
    if (m?.type === 'external') void vscode.env.openExternal(ext);
  });
  panel.onDidDispose(() => {
    if (previewPanel === panel) {
      previewPanel = undefined;
      previewTarget = undefined;
    }
  });
}

function nonce(): string {
  let out = '';
  for (let i = 0; i < 32; i++) out += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 62)];
  return out;
}

async function openPreview(): Promise<void> {
  const v = await sandbox.refresh(false);
  if (!v) return;
  if (v.url) {
    await showPreview(v.url, builderConfig().get<string>('preview.open', 'beside') === 'external');
    return;
  }
  const create = 'Create Sandbox';
  const pick = await vscode.window.showInformationMessage(
    v.state === 'none' ? 'Builder: no sandbox is running' : 'Builder: the sandbox has no preview URL yet',
    ...(v.state === 'none' ? [create] : []),
  );
  if (pick === create) await sandboxCreate();
}

async function sandboxStatus(): Promise<void> {
  const v = await sandbox.refresh(false);
  if (!v) return;
  const open = 'Open Preview';
  const pick = await vscode.window.showInformationMessage(statusMessage(v), ...(v.url ? [open] : []));
  if (pick === open && v.url) await showPreview(v.url, false);
}

async function sandboxKill(): Promise<void> {
  const p = await project();
  if (!p) return;
  const res = await call('builder.sandbox.kill', args.sandboxArgs(p.value), { title: 'Builder: stopping sandbox' });
  await sandbox.refresh(true);
  if (res.ok) await show(killSummary(res.value));
}

async function install(packages: string[], dev: boolean, p: string | undefined): Promise<void> {
  const res = await call('builder.installPackages', args.installArgs({ packages, dev }, p), {
    title: `Builder: installing ${packages.join(', ')}`,
  });
  if (!res.ok) return;
  const s = installSummary(res.value);
  const text = installLog(res.value);
  const log = 'Show Log';
  const pick = await show(s, ...(text ? [log] : []));
  if (pick === log) {
    output.appendLine(`── install ${packages.join(' ')} ──`);
    output.appendLine(text);
    output.show(true);
  }
}

async function installPackages(): Promise<void> {
  const p = await project();
  if (!p) return;
  const text = await vscode.window.showInputBox({
    title: 'Builder: Install Packages',
    prompt: 'Package names, separated by spaces or commas (add -D for dev dependencies)',
    placeHolder: 'react-router-dom zod  or  -D @types/node',
    validateInput: validatePackageInput,
  });
  if (!text) return;
  const parsed = parsePackageInput(text);
  await install(parsed.packages, parsed.dev, p.value);
}

async function detectPackages(): Promise<void> {
  const p = await project();
  if (!p) return;
  const res = await call('builder.detectPackages', args.detectArgs(p.value), { title: 'Builder: scanning imports' });
  if (!res.ok) return;
  const d = parseDetect(res.value);
  const s = detectSummary(d);
  const all = 'Install All';
  const pick = await show(s, ...(d.packages.length || d.typePackages.length ? [all] : []));
  if (pick !== all) return;
  if (d.packages.length) await install(d.packages, false, p.value);
  if (d.typePackages.length) await install(d.typePackages, true, p.value);
}

async function exportZip(): Promise<void> {
  const p = await project();
  if (!p) return;
  const res = await call('builder.createZip', args.zipArgs(p.value), { title: 'Builder: writing zip' });
  if (!res.ok) return;
  const s = zipSummary(res.value);
  const reveal = 'Reveal';
  const pick = await show(s, ...(s.path ? [reveal] : []));
  if (pick === reveal && s.path) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(s.path));
}

async function resetConversation(): Promise<void> {
  const p = await project();
  if (!p) return;
  const yes = 'Reset';
  const ok = await vscode.window.showWarningMessage(
    'Builder: forget this project’s conversation (messages, edit history, preferences)?',
    { modal: true },
    yes,
  );
  if (ok !== yes) return;
  const res = await call('builder.conversation.reset', args.resetArgs(p.value));
  refreshViews();
  if (res.ok) void vscode.window.showInformationMessage('Builder: conversation reset');
}

async function cancelTask(): Promise<void> {
  const p = await project();
  if (!p) return;
  const res = await call('builder.task.cancel', args.cancelArgs(p.value));
  if (res.ok) await show(cancelSummary(res.value));
}

async function setApiKey(preset?: string): Promise<void> {
  let provider = typeof preset === 'string' ? preset : undefined;
  if (!provider) {
    const items = await Promise.all(
      KEYED_PROVIDERS.map(async (p) => ({
        label: p.name,
        description: (await ctx.secrets.get(secretKey(p.id))) ? 'key stored' : p.envVar ? `or ${p.envVar}` : 'optional',
        id: p.id,
      })),
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'Builder: API key for which provider?' });
    if (!pick) return;
    provider = pick.id;
  }
  const info = KEYED_PROVIDERS.find((p) => p.id === provider);
  const key = await vscode.window.showInputBox({
    title: `Builder: ${info?.name ?? provider} API key`,
    prompt: 'Stored in VS Code’s secret storage, never in settings. Leave empty to remove the stored key.',
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) return;
  if (key.trim() === '') {
    await ctx.secrets.delete(secretKey(provider));
    void vscode.window.showInformationMessage(`Builder: ${info?.name ?? provider} key removed`);
  } else {
    await ctx.secrets.store(secretKey(provider), key.trim());
    void vscode.window.showInformationMessage(`Builder: ${info?.name ?? provider} key stored; server restarted`);
  }
  await restartClient(false);
}

// ---------------------------------------------------------------------------------------------
// History: checkpoints, diffs, revert

async function loadHistory(projectUri: string | undefined): Promise<HistoryEntry[] | undefined> {
  const res = await call('builder.history', args.historyArgs(projectUri));
  return res.ok ? parseHistory(res.value) : undefined;
}

async function showHistory(): Promise<void> {
  const p = await project();
  if (!p) return;
  const entries = await loadHistory(p.value);
  if (!entries) return;
  if (entries.length === 0) {
    void vscode.window.showInformationMessage('Builder: no checkpoints yet — generations, applied answers and reverts each record one');
    return;
  }
  type QItem = vscode.QuickPickItem & { id: string };
  const picked = await vscode.window.showQuickPick<QItem>(historyPickItems(entries), {
    title: 'Builder: History (newest first)',
    placeHolder: 'A checkpoint to revert or to show as a diff',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked) return;
  const showDiff = 'Show Diff';
  const doRevert = 'Revert';
  const newer = entries.findIndex((e) => e.id === picked.id);
  const action = await vscode.window.showQuickPick([doRevert, showDiff].map((label) => ({ label, description: label === doRevert && newer > 0 ? `also takes back the ${plural(newer, 'newer checkpoint')}` : undefined })), {
    title: `Builder: ${picked.label}`,
  });
  if (action?.label === showDiff) await openDiff(picked.id, p.value);
  if (action?.label === doRevert) await revert(picked.id, p.value);
}

/** Opens the checkpoint's unified diff as a read-only `diff` document. */
async function openDiff(checkpoint: string, projectUri: string | undefined): Promise<void> {
  const res = await call<{ diff?: unknown }>('builder.diff', args.diffArgs(checkpoint, projectUri));
  if (!res.ok) return;
  const text = typeof res.value?.diff === 'string' ? res.value.diff : '';
  const uri = vscode.Uri.from({ scheme: DIFF_SCHEME, path: `/${checkpoint}.diff`, query: projectUri ?? '' });
  diffs.set(uri.toString(), text || '(this checkpoint changed no text)\n');
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.languages.setTextDocumentLanguage(doc, 'diff');
  await vscode.window.showTextDocument(doc, { preview: true });
}

/** Reverts a checkpoint (and every later one); conflicts get a "Revert Anyway" button. */
async function revert(checkpoint: string, projectUri: string | undefined, force = false): Promise<void> {
  const res = await call('builder.revert', args.revertArgs(checkpoint, projectUri, force), {
    title: `Builder: reverting ${checkpoint}`,
  });
  refreshViews();
  if (!res.ok) return;
  const r = revertSummary(res.value);
  const save = 'Save All';
  const anyway = 'Revert Anyway';
  const pick = await show(r.summary, ...(r.summary.changedFiles ? [save] : []), ...(r.conflicts.length && !force ? [anyway] : []));
  if (pick === save) await vscode.workspace.saveAll(false);
  if (pick === anyway) await revert(checkpoint, projectUri, true);
}

/** Asks first when reverting `target` also takes back newer change sets. */
async function confirmLater(target: HistoryEntry | undefined, later: readonly HistoryEntry[]): Promise<boolean> {
  if (later.length === 0) return true;
  const yes = 'Undo All';
  const ok = await vscode.window.showWarningMessage(
    `Builder: undoing “${target?.summary || target?.id || 'this change set'}” also takes back the ${plural(later.length, 'newer change set')}: ${later.map((e) => e.summary || e.source).join('; ')}`,
    { modal: true },
    yes,
  );
  return ok === yes;
}

/** The result message's Undo button: reverts that checkpoint, asking first if newer ones exist. */
async function undoCheckpoint(checkpoint: string, projectUri: string | undefined): Promise<void> {
  const entries = await loadHistory(projectUri);
  if (!entries) return;
  const i = entries.findIndex((e) => e.id === checkpoint);
  if (!(await confirmLater(entries[i], i > 0 ? entries.slice(0, i) : []))) return;
  await revert(checkpoint, projectUri);
}

async function undoLastGeneration(): Promise<void> {
  const p = await project();
  if (!p) return;
  const entries = await loadHistory(p.value);
  if (!entries) return;
  const { target, later } = lastGeneration(entries);
  if (!target) {
    void vscode.window.showInformationMessage('Builder: no generation or applied answer to undo in this project');
    return;
  }
  if (!(await confirmLater(target, later))) return;
  await revert(target.id, p.value);
}

// ---------------------------------------------------------------------------------------------
// Inline completions status bar

async function toggleCompletions(): Promise<void> {
  const cfg = builderConfig();
  const on = cfg.get<boolean>('completion.enabled') !== false;
  // Where the user set it (workspace or global); global when unset.
  const where = cfg.inspect<boolean>('completion.enabled');
  const target =
    where?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : where?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await cfg.update('completion.enabled', !on, target);
}

class CompletionStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('builder.completion', vscode.StatusBarAlignment.Right, 100);
  private readonly watch: vscode.Disposable;

  constructor() {
    this.item.name = 'Builder Inline Completions';
    this.item.command = TOGGLE_COMMAND;
    this.watch = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('builder.completion')) this.render();
    });
    this.render();
    this.item.show();
  }

  render(): void {
    const cfg = builderConfig();
    const v = completionView(cfg.get('completion.enabled'), cfg.get('completion.model'));
    this.item.text = v.text;
    this.item.tooltip = v.tooltip;
  }

  dispose(): void {
    this.watch.dispose();
    this.item.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Sandbox status bar

class SandboxStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('builder.sandbox', vscode.StatusBarAlignment.Left, 50);
  private timer: ReturnType<typeof setInterval> | undefined;
  /** While `builder.sandbox.create` runs, background checks leave the "starting" view alone. */
  creating = false;
  view: SandboxView = noneView();

  constructor() {
    this.item.name = 'Builder Sandbox';
    this.item.command = 'builderLsp.openPreview';
    this.set(this.view);
    this.item.show();
  }

  set(v: SandboxView): void {
    this.view = v;
    trees.sandbox?.refresh();
    this.item.text = v.text;
    this.item.tooltip = v.tooltip;
    this.item.backgroundColor =
      v.state === 'unhealthy' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    if (shouldPoll(v) && !this.timer) {
      this.timer = setInterval(() => {
        if (!this.creating) void this.refresh(true);
      }, POLL_SECONDS * 1000);
    } else if (!shouldPoll(v) && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Asks the server; `quiet` keeps errors (e.g. "not available yet") out of notifications. */
  async refresh(quiet: boolean): Promise<SandboxView | undefined> {
    const p = quiet ? { value: undefined } : await project();
    if (!p) return undefined;
    const res = await call('builder.sandbox.status', args.sandboxArgs(p.value), { quiet });
    if (!res.ok) {
      // The error was shown (unless quiet); the item says why there is no sandbox.
      this.set(noneView(res.message));
      return undefined;
    }
    this.set(viewFromStatus(res.value));
    return this.view;
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.item.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The Builder view (activity bar): prompt box, conversation, history, sandbox, providers

/** A tree of `ViewNode`s from `load` (re-run on refresh, only while the view is visible). */
class BuilderTree implements vscode.TreeDataProvider<ViewNode> {
  private readonly changed = new vscode.EventEmitter<ViewNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  constructor(private readonly load: () => Promise<ViewNode[]>) {}
  refresh(): void {
    this.changed.fire(undefined);
  }
  getTreeItem(n: ViewNode): vscode.TreeItem {
    const item = new vscode.TreeItem(n.label, n.children?.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.description = n.description;
    item.tooltip = n.tooltip;
    if (n.icon) item.iconPath = new vscode.ThemeIcon(n.icon);
    item.contextValue = n.contextValue;
    if (n.command) item.command = n.command;
    return item;
  }
  async getChildren(n?: ViewNode): Promise<ViewNode[]> {
    if (n) return n.children ?? [];
    if (!currentClient()?.isRunning()) return [{ label: 'The server is not running', description: 'Builder: Show Output', icon: 'warning', command: { command: 'builderLsp.showOutput', title: 'Show Output' } }];
    return this.load().catch((e) => [{ label: `Could not load: ${errorMessage(e)}`, icon: 'error' }]);
  }
  dispose(): void {
    this.changed.dispose();
  }
}

const trees: { conversation?: BuilderTree; history?: BuilderTree; sandbox?: BuilderTree; providers?: BuilderTree } = {};

function refreshViews(): void {
  for (const t of Object.values(trees)) t?.refresh();
}

/** The project the views show: the active file's folder, else the first one. */
function viewProject(): string | undefined {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const active = vscode.window.activeTextEditor?.document.uri;
  return (active && vscode.workspace.getWorkspaceFolder(active)?.uri.toString()) ?? folders[0]?.uri.toString();
}

function registerViews(context: vscode.ExtensionContext): void {
  trees.conversation = new BuilderTree(async () => {
    const res = await call('builder.conversation.get', args.resetArgs(viewProject()), { quiet: true });
    return res.ok ? conversationNodes(res.value) : [{ label: res.message, icon: 'warning' }];
  });
  trees.history = new BuilderTree(async () => {
    const res = await call('builder.history', args.historyArgs(viewProject()), { quiet: true });
    return historyNodes(res.ok ? parseHistory(res.value) : undefined);
  });
  trees.sandbox = new BuilderTree(async () => {
    const res = await call('builder.sandbox.errors', args.sandboxArgs(viewProject()), { quiet: true });
    return sandboxNodes(sandbox.view, res.ok ? res.value : undefined);
  });
  trees.providers = new BuilderTree(async () => {
    const res = await call('builder.models', args.modelsArgs(viewProject()), { quiet: true });
    return providerNodes(res.ok ? parseModelsResult(res.value) : undefined);
  });
  for (const [id, tree] of [
    ['builder.conversation', trees.conversation],
    ['builder.history', trees.history],
    ['builder.sandbox', trees.sandbox],
    ['builder.providers', trees.providers],
  ] as const) {
    context.subscriptions.push(tree, vscode.window.createTreeView(id, { treeDataProvider: tree, showCollapseAll: id === 'builder.history' }));
  }
  context.subscriptions.push(
    vscode.window.registerWebviewViewProvider('builder.prompt', new PromptView(), { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.commands.registerCommand('builderLsp.view.refresh', refreshViews),
    vscode.commands.registerCommand('builderLsp.view.revert', (n?: ViewNode) => n?.checkpoint && undoCheckpoint(n.checkpoint, viewProject())),
    vscode.commands.registerCommand('builderLsp.view.diff', (n?: ViewNode) => n?.checkpoint && openDiff(n.checkpoint, viewProject())),
    vscode.window.onDidChangeActiveTextEditor(() => refreshViews()),
  );
}

/** The prompt box: a multi-line prompt and the model picker; Generate runs `runGenerate`. */
class PromptView implements vscode.WebviewViewProvider {
  async resolveWebviewView(view: vscode.WebviewView): Promise<void> {
    view.webview.options = { enableScripts: true };
    const render = async () => {
      const res = currentClient()?.isRunning() ? await call('builder.models', args.modelsArgs(viewProject()), { quiet: true }) : undefined;
      const models = res?.ok ? parseModelsResult(res.value) : undefined;
      const items = models ? modelPickItems(models, ctx.workspaceState.get<string>(LAST_MODEL)).filter((i) => i.kind === 'model' && i.model) : [];
      view.webview.html = promptHtml(
        items.map((i) => ({ id: i.model ?? '', label: i.label })),
        ctx.workspaceState.get<string>(LAST_MODEL) ?? models?.defaultModel,
        nonce(),
        view.webview.cspSource,
      );
    };
    await render();
    view.webview.onDidReceiveMessage(async (m: { type?: string; prompt?: unknown; model?: unknown }) => {
      if (m?.type === 'refresh') return render();
      if (m?.type !== 'generate' || typeof m.prompt !== 'string' || !m.prompt.trim()) return;
      void view.webview.postMessage({ type: 'busy', busy: true });
      try {
        await runGenerate(m.prompt.trim(), typeof m.model === 'string' && m.model ? m.model : undefined, viewProject());
      } finally {
        void view.webview.postMessage({ type: 'busy', busy: false });
      }
    });
  }
}
