// The Builder view's trees (activity bar → Builder): the project's conversation, its history
// (Revert / Show Diff per entry), the sandbox (status, preview URL, errors) and the providers
// (key present, base URL). Built here from server results as plain nodes, so they are tested
// without VS Code; extension.ts turns them into TreeItems.

import { filesLine, formatTime, type HistoryEntry } from './history';
import { type ModelsResult } from './models';
import { plural } from './results';
import { type SandboxView } from './status';

export interface ViewNode {
  label: string;
  description?: string;
  tooltip?: string;
  /** A codicon id (`history`, `error`, …). */
  icon?: string;
  /** Drives the inline actions in package.json's `view/item/context` menus. */
  contextValue?: string;
  /** A command to run on click: `{command, args}`. */
  command?: { command: string; title: string; arguments?: unknown[] };
  children?: ViewNode[];
  /** The checkpoint id, for the history entry's actions. */
  checkpoint?: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const oneLine = (s: string, n = 80) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

function empty(label: string): ViewNode[] {
  return [{ label, icon: 'info' }];
}

/**
 * `builder.conversation.get` → one node per request the user made (newest first), with the
 * files it touched and the outcome (from `edits`), or the assistant's reply when no edit matched.
 */
export function conversationNodes(result: unknown, now: Date = new Date()): ViewNode[] {
  const r = obj(result);
  const edits = list(r.edits).map(obj);
  const messages = list(r.messages).map(obj);
  const out: ViewNode[] = [];
  const users = messages.filter((m) => str(m.role) === 'user');
  for (const m of users.slice().reverse()) {
    const prompt = str(m.content);
    const edit = edits.find((e) => str(e.userRequest) === prompt);
    const files = edit ? list(edit.targetFiles).map(str).filter(Boolean) : list(obj(m.metadata).editedFiles).map(str).filter(Boolean);
    const when = str(m.timestamp);
    const outcome = edit ? str(edit.outcome) : '';
    out.push({
      label: oneLine(prompt) || '(empty prompt)',
      description: [when ? formatTime(when, now) : '', files.length ? plural(files.length, 'file') : '', outcome && outcome !== 'success' ? outcome : '']
        .filter(Boolean)
        .join(' · '),
      tooltip: [prompt, edit?.error ? `error: ${str(edit.error)}` : ''].filter(Boolean).join('\n'),
      icon: outcome === 'failed' ? 'error' : outcome === 'partial' ? 'warning' : 'comment',
      contextValue: 'conversationEntry',
      children: files.map((f) => ({ label: f, icon: 'file' })),
    });
  }
  if (out.length === 0) return empty('No conversation yet — Builder: Generate… starts one');
  const topic = str(r.currentTopic);
  return topic ? [{ label: `Topic: ${oneLine(topic, 60)}`, icon: 'tag' }, ...out] : out;
}

const CHANGE_ICON: Record<string, string> = { created: 'diff-added', updated: 'diff-modified', deleted: 'diff-removed' };

/** `builder.history` entries → one node per checkpoint (Revert / Show Diff inline), files below. */
export function historyNodes(entries: readonly HistoryEntry[] | undefined, now: Date = new Date()): ViewNode[] {
  if (!entries) return empty('History unavailable (is the server running?)');
  if (entries.length === 0) return empty('No checkpoints yet — generations and applied answers record one');
  return entries.map((e) => ({
    label: oneLine(e.summary || e.source || e.id),
    description: [formatTime(e.time, now), e.source, e.model ?? ''].filter(Boolean).join(' · '),
    tooltip: `${e.id}\n${filesLine(e.files)}`,
    icon: e.source === 'revert' ? 'discard' : 'history',
    contextValue: 'checkpoint',
    checkpoint: e.id,
    children: e.files.map((f) => ({ label: f.path, description: f.change, icon: CHANGE_ICON[f.change] ?? 'file' })),
  }));
}

/** The sandbox: its status lines, the preview URL (click opens it), then current errors. */
export function sandboxNodes(view: SandboxView | undefined, errors: unknown): ViewNode[] {
  if (!view || view.state === 'none') {
    return [{ label: 'No sandbox', description: 'click to create one', icon: 'vm-outline', command: { command: 'builderLsp.sandboxCreate', title: 'Create Sandbox' } }];
  }
  const out: ViewNode[] = [
    {
      label: view.state === 'starting' ? 'Starting' : view.state === 'unhealthy' ? 'Unhealthy' : 'Running',
      description: [view.provider, view.sandboxId].filter(Boolean).join(' · '),
      tooltip: view.tooltip,
      icon: view.state === 'unhealthy' ? 'warning' : view.state === 'starting' ? 'sync' : 'vm-running',
      contextValue: 'sandbox',
    },
  ];
  if (view.url) out.push({ label: 'Preview', description: view.url, icon: 'globe', command: { command: 'builderLsp.openPreview', title: 'Open Preview' } });
  const e = obj(errors);
  const all: Obj[] = [...list(e.compile).map((x): Obj => ({ ...obj(x), kind: 'compile' })), ...list(e.runtime).map(obj)];
  out.push({
    label: all.length ? plural(all.length, 'error') : 'No errors',
    icon: all.length ? 'error' : 'pass',
    children: all.map((x) => {
      const where = str(x.path) ? `${str(x.path)}${typeof x.line === 'number' ? `:${x.line}` : ''}` : '';
      return { label: oneLine(str(x.message) || '(no message)'), description: [str(x.kind), where].filter(Boolean).join(' · '), tooltip: str(x.stack) || str(x.message), icon: 'error' };
    }),
  });
  return out;
}

/** Providers: configured or not, where the key comes from, the base URL; the default model first. */
export function providerNodes(models: ModelsResult | undefined): ViewNode[] {
  if (!models) return empty('Providers unavailable (is the server running?)');
  const out: ViewNode[] = [
    { label: `Model: ${models.defaultModel ?? 'none'}`, description: models.defaultModel ? 'default' : 'set builder.model or a key', icon: 'sparkle', command: { command: 'builderLsp.generate', title: 'Generate…' } },
  ];
  for (const p of models.providers) {
    const status = p.configured ? (p.keyRequired ? `key ${p.keySource ? `from ${p.keySource}` : 'present'}` : 'no key needed') : p.keyRequired && !p.keyPresent ? 'no key' : 'not configured';
    out.push({
      label: p.name,
      description: [status, p.baseUrl ? `base URL ${p.baseUrl}` : ''].filter(Boolean).join(' · '),
      tooltip: `${p.provider}: ${status}${p.baseUrl ? `\n${p.baseUrl}` : ''}`,
      icon: p.configured ? 'pass' : 'circle-slash',
      contextValue: p.configured ? 'provider' : 'providerNeedsKey',
      command: p.configured || !p.keyRequired ? undefined : { command: 'builderLsp.setApiKey', title: 'Set API Key…', arguments: [p.provider] },
    });
  }
  return out;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The prompt box's page: a multi-line prompt (Ctrl/Cmd+Enter generates), the model picker (the
 * configured providers' models; empty = the server's default), and Generate.
 */
export function promptHtml(models: readonly { id: string; label: string }[], selected: string | undefined, nonce: string, cspSource: string): string {
  const options = [
    `<option value="">${esc('default model')}</option>`,
    ...models.map((m) => `<option value="${esc(m.id)}"${m.id === selected ? ' selected' : ''}>${esc(m.label)}</option>`),
  ].join('');
  const csp = `default-src 'none'; style-src ${cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}'`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<style>
  body { padding: 6px; font: var(--vscode-font-size) var(--vscode-font-family); color: var(--vscode-foreground); }
  textarea, select { width: 100%; box-sizing: border-box; margin-bottom: 6px; font: inherit;
    color: var(--vscode-input-foreground); background: var(--vscode-input-background); border: 1px solid var(--vscode-input-border, transparent); }
  textarea { min-height: 6em; resize: vertical; }
  button { width: 100%; padding: 4px; font: inherit; color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: 0; cursor: pointer; }
  button:disabled { opacity: .6; cursor: default; }
</style></head>
<body>
<textarea id="prompt" aria-label="What should Builder build or change?" placeholder="What should Builder build or change? (Ctrl+Enter)"></textarea>
<select id="model" aria-label="Model">${options}</select>
<button id="go">Generate</button>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const prompt = document.getElementById('prompt'), model = document.getElementById('model'), go = document.getElementById('go');
  const state = vscode.getState() || {};
  if (state.prompt) prompt.value = state.prompt;
  prompt.addEventListener('input', () => vscode.setState({ prompt: prompt.value }));
  const send = () => { if (prompt.value.trim() && !go.disabled) vscode.postMessage({ type: 'generate', prompt: prompt.value, model: model.value }); };
  go.addEventListener('click', send);
  prompt.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); } });
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'busy') { go.disabled = e.data.busy; go.textContent = e.data.busy ? 'Generating…' : 'Generate'; }
  });
</script>
</body></html>`;
}
