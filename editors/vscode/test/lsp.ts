// A small LSP client over stdio (Content-Length framing) for tests against the real
// builder-lsp binary. It answers the server's requests the way VS Code does
// (configuration, progress creation, applyEdit), and records every notification.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Message {
  jsonrpc: '2.0';
  id?: number | string | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The server binary: $BUILDER_LSP_BIN, else ../../target/debug/builder-lsp from editors/vscode. */
export function serverBinary(): string {
  const fromEnv = process.env.BUILDER_LSP_BIN;
  if (fromEnv) return path.resolve(fromEnv);
  // Tests run from editors/vscode (npm test); the bundle lives in out/test.
  return path.resolve(__dirname, '..', '..', '..', '..', 'target', 'debug', 'builder-lsp');
}

export interface ClientHooks {
  /** Answer to `workspace/configuration` items (default: `{}` each). */
  configuration?: (items: { section?: string; scopeUri?: string }[]) => unknown[];
  /** Answer to `workspace/applyEdit` (default: refuse, so the server writes files itself). */
  applyEdit?: (params: unknown) => unknown;
}

export class LspClient {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly notifications: Message[] = [];
  readonly serverRequests: Message[] = [];
  stderr = '';
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private exited = false;

  constructor(
    bin: string,
    private readonly hooks: ClientHooks = {},
    env: NodeJS.ProcessEnv = {},
  ) {
    if (!fs.existsSync(bin)) {
      throw new Error(
        `builder-lsp binary not found at ${bin}: build it (cargo build) or set BUILDER_LSP_BIN`,
      );
    }
    this.proc = spawn(bin, ['--stdio'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d: Buffer) => this.onData(d));
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.proc.on('exit', () => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`server exited; stderr:\n${this.stderr}`));
      this.pending.clear();
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const headerEnd = this.buf.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const header = this.buf.subarray(0, headerEnd).toString('ascii');
      const m = /Content-Length:\s*(\d+)/i.exec(header);
      if (!m) throw new Error(`bad header: ${header}`);
      const len = Number(m[1]);
      const start = headerEnd + 4;
      if (this.buf.length < start + len) return;
      const body = this.buf.subarray(start, start + len).toString('utf8');
      this.buf = this.buf.subarray(start + len);
      this.dispatch(JSON.parse(body) as Message);
    }
  }

  private dispatch(msg: Message): void {
    if (msg.method !== undefined && msg.id !== undefined && msg.id !== null) {
      this.serverRequests.push(msg);
      this.answer(msg);
    } else if (msg.method !== undefined) {
      this.notifications.push(msg);
    } else if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (p && msg.error) p.reject(new RpcError(msg.error.code, msg.error.message));
      else if (p) p.resolve(msg.result);
    }
    this.waiters = this.waiters.filter((w) => {
      if (w.pred(msg)) {
        w.resolve(msg);
        return false;
      }
      return true;
    });
  }

  private answer(req: Message): void {
    let result: unknown = null;
    const params = req.params as Record<string, unknown>;
    switch (req.method) {
      case 'workspace/configuration': {
        const items = (params.items as { section?: string; scopeUri?: string }[]) ?? [];
        result = this.hooks.configuration ? this.hooks.configuration(items) : items.map(() => ({}));
        break;
      }
      case 'workspace/applyEdit':
        result = this.hooks.applyEdit ? this.hooks.applyEdit(params) : { applied: false, failureReason: 'test client' };
        break;
      case 'window/showDocument':
        result = { success: true };
        break;
      default:
        result = null;
    }
    this.write({ jsonrpc: '2.0', id: req.id, result });
  }

  write(msg: Message): void {
    if (this.exited) return;
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    this.proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.proc.stdin.write(body);
  }

  request<T = unknown>(method: string, params: unknown, timeoutMs = 20000): Promise<T> & { id: number } {
    const id = this.nextId++;
    const p = new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${method} timed out after ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
    this.write({ jsonrpc: '2.0', id, method, params });
    return Object.assign(p, { id });
  }

  notify(method: string, params: unknown): void {
    this.write({ jsonrpc: '2.0', method, params });
  }

  /** Resolves with the first message (past or future) that matches. */
  waitFor(pred: (m: Message) => boolean, timeoutMs = 10000, what = 'message'): Promise<Message> {
    const seen = [...this.notifications, ...this.serverRequests].find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }

  execute<T = unknown>(command: string, args: unknown, workDoneToken?: string, timeoutMs?: number) {
    return this.request<T>('workspace/executeCommand', { command, arguments: [args], workDoneToken }, timeoutMs);
  }

  async shutdown(): Promise<void> {
    if (this.exited) return;
    try {
      await this.request('shutdown', null, 3000);
      this.notify('exit', null);
    } catch {
      // fall through to kill
    }
    await new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      const t = setTimeout(() => {
        this.proc.kill('SIGKILL');
        resolve();
      }, 2000);
      this.proc.on('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/**
 * What VS Code 1.90 + vscode-languageclient 9 send as client capabilities (the parts that matter;
 * manifest.test.ts pins the library's defaults these mirror). `textDocument.inlineCompletion` is
 * added by the proposed InlineCompletionItemFeature the extension registers: WITH_INLINE_COMPLETION.
 */
export const VSCODE_CAPABILITIES = {
  workspace: {
    applyEdit: true,
    workspaceEdit: {
      documentChanges: true,
      resourceOperations: ['create', 'rename', 'delete'],
      failureHandling: 'textOnlyTransactional',
      normalizesLineEndings: true,
      changeAnnotationSupport: { groupsOnLabel: true },
    },
    configuration: true,
    workspaceFolders: true,
    didChangeConfiguration: { dynamicRegistration: true },
    executeCommand: { dynamicRegistration: true },
  },
  window: { workDoneProgress: true, showDocument: { support: true }, showMessage: {} },
  general: { positionEncodings: ['utf-16'] },
  textDocument: { synchronization: { dynamicRegistration: true, didSave: true } },
};

/** VSCODE_CAPABILITIES plus what `registerProposedFeatures()` declares. */
export const WITH_INLINE_COMPLETION = {
  ...VSCODE_CAPABILITIES,
  textDocument: { ...VSCODE_CAPABILITIES.textDocument, inlineCompletion: { dynamicRegistration: true } },
};

export function fileUri(p: string): string {
  return 'file://' + p.split(path.sep).map(encodeURIComponent).join('/');
}

function uriPath(uri: string): string {
  return decodeURIComponent(new URL(uri).pathname);
}

/** Offset of an LSP position (UTF-16, as VS Code negotiates) in a JS string. */
function offsetAt(text: string, pos: { line: number; character: number }): number {
  let off = 0;
  for (let l = 0; l < pos.line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  const eol = text.indexOf('\n', off);
  return Math.min(off + pos.character, eol < 0 ? text.length : eol);
}

type Range = { start: { line: number; character: number }; end: { line: number; character: number } };

/**
 * Applies a `workspace/applyEdit` to disk the way VS Code applies it and then saves ("Save All"):
 * create / delete / rename operations and text edits (UTF-16 ranges, all against the
 * document as it was), in `documentChanges` order, or the `changes` map. Answers
 * `{applied: true}`, or `{applied: false, failureReason}` for an operation that cannot be done.
 */
export function applyEditToDisk(params: unknown): { applied: boolean; failureReason?: string } {
  const edit = (params as { edit?: Record<string, unknown> }).edit ?? {};
  type Op = Record<string, unknown>;
  const ops: Op[] = Array.isArray(edit.documentChanges)
    ? (edit.documentChanges as Op[])
    : Object.entries((edit.changes as Record<string, unknown[]>) ?? {}).map(([uri, edits]) => ({ textDocument: { uri }, edits }));
  try {
    for (const op of ops) {
      const opts = (op.options ?? {}) as { overwrite?: boolean; ignoreIfExists?: boolean; ignoreIfNotExists?: boolean; recursive?: boolean };
      if (op.kind === 'create') {
        const f = uriPath(String(op.uri));
        if (fs.existsSync(f)) {
          if (opts.ignoreIfExists && !opts.overwrite) continue;
          if (!opts.overwrite) throw new Error(`${f} exists`);
        }
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, '');
      } else if (op.kind === 'delete') {
        const f = uriPath(String(op.uri));
        if (!fs.existsSync(f)) {
          if (opts.ignoreIfNotExists) continue;
          throw new Error(`${f} does not exist`);
        }
        fs.rmSync(f, { recursive: !!opts.recursive });
      } else if (op.kind === 'rename') {
        fs.renameSync(uriPath(String(op.oldUri)), uriPath(String(op.newUri)));
      } else {
        const f = uriPath(String((op.textDocument as { uri: string }).uri));
        const text = fs.readFileSync(f, 'utf8');
        const edits = ((op.edits as { range: Range; newText: string }[]) ?? [])
          .map((e) => ({ start: offsetAt(text, e.range.start), end: offsetAt(text, e.range.end), newText: e.newText }))
          .sort((a, b) => b.start - a.start);
        let out = text;
        for (const e of edits) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
        fs.writeFileSync(f, out);
      }
    }
    return { applied: true };
  } catch (e) {
    return { applied: false, failureReason: (e as Error).message };
  }
}
