// Turning server answers and errors into what the user reads.

export type Level = 'info' | 'warning' | 'error';

export interface Summary {
  level: Level;
  message: string;
  /** Number of files the result changed (drives the "Save All" button). */
  changedFiles?: number;
  /** The paths (relative to the project) the result created or updated, to save them. */
  changedPaths?: string[];
  url?: string;
  path?: string;
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function strings(v: unknown): string[] {
  return list(v).map((x) => (typeof x === 'string' ? x : name(x))).filter((x) => x !== '');
}
function name(x: unknown): string {
  const o = obj(x);
  for (const k of ['path', 'name', 'package']) if (typeof o[k] === 'string') return o[k] as string;
  return '';
}
function text(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** JSON-RPC error codes the extension distinguishes. */
export const RequestCancelled = -32800;
export const RequestFailed = -32803;
export const InvalidParams = -32602;
export const MethodNotFound = -32601;

export function errorCode(err: unknown): number | undefined {
  const c = obj(err).code;
  return typeof c === 'number' ? c : undefined;
}

export function isCancelled(err: unknown): boolean {
  return errorCode(err) === RequestCancelled;
}

/** One line for a person: the server's own message (it names fields and what to do). */
export function errorMessage(err: unknown): string {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message : text(obj(err).message) || String(err);
  if (code === RequestCancelled) return 'cancelled';
  if (code === MethodNotFound) return `${msg} (this builder-lsp is older than the extension; update it)`;
  return msg;
}

function skippedLines(v: unknown): string[] {
  return list(v).map((s) => {
    const o = obj(s);
    return o.reason ? `${text(o.path)} (${text(o.reason)})` : text(o.path) || String(s);
  });
}

/** `builder.apply` → `{filesCreated, filesUpdated, filesSkipped, errors, message, applied, …}`. */
/**
 * A cancelled generation in one short line: what landed, and the file cut off by the cancel
 * once (not as "skipped (truncated …)" plus "incomplete" plus a "cancelled" error).
 */
function cancelledGeneration(r: Obj): Summary {
  const created = strings(r.filesCreated);
  const updated = strings(r.filesUpdated);
  const cut = [...new Set([...strings(r.truncated), ...list(r.filesSkipped).map(obj).filter((f) => /^truncated/.test(text(f.reason))).map((f) => text(f.path))])].filter(Boolean);
  const landed = [...created, ...updated];
  const parts = [landed.length ? `kept ${landed.join(', ')}` : 'nothing was changed'];
  if (cut.length) parts.push(`not written: ${cut.join(', ')} (cut off)`);
  const errors = strings(r.errors).filter((e) => !/^cancell?ed\b/i.test(e));
  if (errors.length) parts.push(errors.join('; '));
  return {
    level: 'warning',
    message: `Generation cancelled — ${parts.join('; ')}`,
    changedFiles: landed.length,
    changedPaths: landed,
  };
}

/** "Builder: generation cancelled" for a request cancelled before it answered. */
export function cancelledMessage(command: string): string {
  const what: Record<string, string> = { 'builder.generate': 'generation', 'builder.fix': 'fix', 'builder.apply': 'apply', 'builder.sandbox.create': 'sandbox creation', 'builder.installPackages': 'install' };
  return `Builder: ${what[command] ?? command.replace(/^builder\./, '')} cancelled`;
}

export function applySummary(result: unknown): Summary {
  const r = obj(result);
  const created = strings(r.filesCreated);
  const updated = strings(r.filesUpdated);
  const skipped = skippedLines(r.filesSkipped);
  const errors = strings(r.errors);
  const truncated = strings(r.truncated);
  const changed = created.length + updated.length;
  const parts: string[] = [];
  if (created.length) parts.push(`created ${created.join(', ')}`);
  if (updated.length) parts.push(`updated ${updated.join(', ')}`);
  if (skipped.length) parts.push(`skipped ${skipped.join('; ')}`);
  if (truncated.length) parts.push(`incomplete (not applied): ${truncated.join(', ')}`);
  if (errors.length) parts.push(errors.join('; '));
  const head = text(r.message) || (changed ? `Applied ${plural(changed, 'file')}` : 'No file changed');
  const level: Level = errors.length || r.applied === false ? 'error' : skipped.length || truncated.length ? 'warning' : 'info';
  return {
    level: changed === 0 && !errors.length && r.applied !== false ? 'warning' : level,
    message: parts.length ? `${head} — ${parts.join('; ')}` : head,
    changedFiles: changed,
    changedPaths: [...created, ...updated],
  };
}

/** `builder.generate` (wait) → GenerateResult: apply fields plus model, usage, explanation. */
export function generateSummary(result: unknown): Summary {
  const r = obj(result);
  if (r.stopReason === 'cancelled') return cancelledGeneration(r);
  const s = applySummary(r);
  const model = text(r.model);
  const packages = strings(r.packages);
  const extra: string[] = [];
  if (packages.length) extra.push(`packages asked for: ${packages.join(', ')} (Builder: Install Packages…)`);
  if (r.stopReason === 'cancelled') s.level = 'warning';
  return { ...s, message: [s.message, ...extra].join(' — ') + (model ? ` [${model}]` : '') };
}

/** `builder.installPackages` → `{installed[], alreadyInstalled[], failed[], log}`. */
export function installSummary(result: unknown): Summary {
  const r = obj(result);
  const installed = strings(r.installed);
  const already = strings(r.alreadyInstalled);
  const failed = list(r.failed).map((f) => {
    const o = obj(f);
    const n = name(f) || (typeof f === 'string' ? f : '');
    return o.error || o.reason ? `${n} (${text(o.error) || text(o.reason)})` : n;
  });
  const parts: string[] = [];
  if (installed.length) parts.push(`installed ${installed.join(', ')}`);
  if (already.length) parts.push(`already installed ${already.join(', ')}`);
  if (failed.length) parts.push(`failed ${failed.join(', ')}`);
  return {
    level: failed.length ? 'error' : 'info',
    message: parts.length ? parts.join('; ') : 'Nothing to install',
  };
}

/** The package manager's output: `log` is an array of lines (a string in older servers). */
export function installLog(result: unknown): string {
  const log = obj(result).log;
  if (typeof log === 'string') return log;
  return list(log)
    .filter((l): l is string => typeof l === 'string')
    .join('\n');
}

export interface Detected {
  packages: string[];
  typePackages: string[];
  imports: number;
}

/** `builder.detectPackages` → `{imports[], packages[], typePackages[], installed[], failed[]}`. */
export function parseDetect(result: unknown): Detected {
  const r = obj(result);
  return { packages: strings(r.packages), typePackages: strings(r.typePackages), imports: list(r.imports).length };
}

export function detectSummary(d: Detected): Summary {
  if (!d.packages.length && !d.typePackages.length) {
    return { level: 'info', message: `No missing packages (${plural(d.imports, 'import')} checked)` };
  }
  const parts: string[] = [];
  if (d.packages.length) parts.push(`missing: ${d.packages.join(', ')}`);
  if (d.typePackages.length) parts.push(`missing types (dev): ${d.typePackages.join(', ')}`);
  return { level: 'warning', message: parts.join('; ') };
}

/** `builder.createZip` → `{path, files, bytes, excluded[]}`. */
export function zipSummary(result: unknown): Summary {
  const r = obj(result);
  const files = typeof r.files === 'number' ? r.files : list(r.files).length;
  const bytes = typeof r.bytes === 'number' ? r.bytes : 0;
  const excluded = list(r.excluded).length;
  const size = bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} KB`;
  return {
    level: 'info',
    message: `Zip written to ${text(r.path)}: ${plural(files, 'file')}, ${size}${excluded ? `, ${excluded} left out (secrets, node_modules, …)` : ''}`,
    path: text(r.path) || undefined,
  };
}

/** `builder.sandbox.create` → `{sandboxId, provider, url, createdAt}` (or `{taskId, started}`). */
export function sandboxCreateSummary(result: unknown): Summary {
  const r = obj(result);
  if (r.started === true && !r.url) return { level: 'info', message: `Sandbox starting (task ${text(r.taskId)})` };
  const url = text(r.url);
  // What landed in the workspace: the template's files, and package.json with what the sandbox
  // installed (saved at once, so no config file is left empty on disk).
  const template = strings(r.templateApplied);
  const installed = strings(r.packagesInstalled);
  const changedPaths = [...template, ...(installed.length && !template.includes('package.json') ? ['package.json'] : [])];
  const extra = template.length ? ` — wrote ${plural(template.length, 'template file')}` : '';
  return {
    level: 'info',
    message: `Sandbox ${text(r.sandboxId)} (${text(r.provider) || 'local'}) is running${url ? ` at ${url}` : ''}${extra}`,
    url: url || undefined,
    ...(changedPaths.length ? { changedPaths } : {}),
  };
}

export function killSummary(result: unknown): Summary {
  const r = obj(result);
  return r.killed === true
    ? { level: 'info', message: `Sandbox ${text(r.sandboxId)} stopped` }
    : { level: 'info', message: 'No sandbox was running' };
}

export function cancelSummary(result: unknown): Summary {
  const r = obj(result);
  if (r.cancelled === true) return { level: 'info', message: `Cancelled ${text(r.taskId)}` };
  return { level: 'info', message: text(r.message) || 'No running task in this project' };
}

/**
 * Writes `builder/generationDelta` text to the output channel, with a header whenever a new
 * task starts streaming.
 */
export class DeltaWriter {
  private last: string | undefined;
  constructor(
    private readonly append: (s: string) => void,
    private readonly onStart: (taskId: string) => void = () => undefined,
  ) {}
  write(params: unknown): void {
    const p = obj(params);
    if (typeof p.text !== 'string') return;
    const id = typeof p.taskId === 'string' ? p.taskId : '';
    if (id !== this.last) {
      this.append(`${this.last === undefined ? '' : '\n'}── generation ${id} ──\n`);
      this.last = id;
      this.onStart(id);
    }
    this.append(p.text);
  }
}

/**
 * The open documents to save after Builder's edit landed (`builder.saveAfterApply`): the dirty
 * ones among the result's `changed` paths (relative to `root`). Saving them means no file is
 * left at 0 bytes on disk behind an unsaved tab.
 */
export function toSave(changed: readonly string[], root: string, docs: readonly { path: string; dirty: boolean }[]): string[] {
  const norm = (p: string) => p.replace(/\\/g, '/').replace(/\/+$/, '');
  const base = norm(root);
  const wanted = new Set(changed.map((rel) => `${base}/${norm(rel).replace(/^\.\//, '')}`));
  return docs.filter((d) => d.dirty && wanted.has(norm(d.path))).map((d) => d.path);
}
