// Finding the builder-lsp binary: the `builder.serverPath` setting, then the binary bundled in a
// platform-specific .vsix (`server/builder-lsp`), then a build in the workspace (`target/release`,
// `target/debug`), then Cargo's bin folder, then PATH. The extension host's PATH is the least
// reliable (desktop launchers and code-server's login shell rebuild it), so it comes last; the
// output channel says which one was used.
//
// In remote and web windows (code-server, Remote-SSH) the settings may reach the extension host
// after activation, so a failed lookup is retried a few times over ~3 s (`resolveWithRetry`),
// reading the setting afresh each time, before the error is shown.

import * as path from 'node:path';

export const INSTALL_HINT =
  'Install it with "cargo install builder-lsp" (or "cargo install --path ." in a clone of the builder-lsp repository), or set builder.serverPath to the binary.';

export type Source = 'setting' | 'bundled' | 'workspace' | 'cargo' | 'PATH';

export type Resolved = { ok: true; path: string; source: Source } | { ok: false; message: string };

export interface Env {
  PATH?: string;
  HOME?: string;
  CARGO_HOME?: string;
}

/** The binary's file name on `platform`. */
export function exeName(platform: string = process.platform): string {
  return platform === 'win32' ? 'builder-lsp.exe' : 'builder-lsp';
}

/** Where a platform-specific .vsix carries the server, inside the extension's folder. */
export function bundledServerPath(extensionDir: string, platform: string = process.platform): string {
  return path.join(extensionDir, 'server', exeName(platform));
}

/** How the output channel names a source. */
export function describeSource(source: Source): string {
  switch (source) {
    case 'setting':
      return 'builder.serverPath';
    case 'bundled':
      return "the extension's bundled binary";
    case 'workspace':
      return "the workspace's target folder";
    case 'cargo':
      return '~/.cargo/bin';
    case 'PATH':
      return 'PATH';
  }
}

export function resolveServerPath(
  setting: string | undefined,
  env: Env,
  isExecutable: (p: string) => boolean,
  platform: string = process.platform,
  workspaceDirs: readonly string[] = [],
  bundled?: string,
): Resolved {
  const exe = exeName(platform);
  const s = setting?.trim();
  if (s) {
    const p = s === '~' || s.startsWith('~/') ? path.join(env.HOME ?? '~', s.slice(1)) : s;
    if (isExecutable(p)) return { ok: true, path: p, source: 'setting' };
    return { ok: false, message: `builder.serverPath is "${s}", but no executable builder-lsp is there. ${INSTALL_HINT}` };
  }
  if (bundled && isExecutable(bundled)) return { ok: true, path: bundled, source: 'bundled' };
  for (const dir of workspaceDirs) {
    for (const profile of ['release', 'debug']) {
      const p = path.join(dir, 'target', profile, exe);
      if (isExecutable(p)) return { ok: true, path: p, source: 'workspace' };
    }
  }
  const cargoHome = env.CARGO_HOME ?? (env.HOME ? path.join(env.HOME, '.cargo') : undefined);
  if (cargoHome) {
    const p = path.join(cargoHome, 'bin', exe);
    if (isExecutable(p)) return { ok: true, path: p, source: 'cargo' };
  }
  const sep = platform === 'win32' ? ';' : ':';
  for (const dir of (env.PATH ?? '').split(sep)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    if (isExecutable(p)) return { ok: true, path: p, source: 'PATH' };
  }
  return { ok: false, message: `builder-lsp was not found (builder.serverPath, the extension's bundled server, the workspace's target/release and target/debug, ~/.cargo/bin, PATH). ${INSTALL_HINT}` };
}

export interface RetryOptions {
  /** Lookups in all, the first included (default 6). */
  attempts?: number;
  /** Wait before the second lookup; doubled after each further failure (default 100 ms). */
  delayMs?: number;
  /** Longest single wait (default 1600 ms): 100+200+400+800+1600 ≈ 3.1 s over 6 attempts. */
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told before each wait (for the output channel). */
  onRetry?: (attempt: number, delayMs: number, last: Resolved & { ok: false }) => void;
}

export type RetryResolved = Resolved & { attempts: number };

/**
 * `resolve(readSetting())` until it succeeds or `attempts` lookups failed, with a short doubling
 * wait between them. The setting is read afresh for every attempt (never cached), since in remote
 * and web windows the configuration can arrive after activation; the last failure is returned.
 */
export async function resolveWithRetry(
  readSetting: () => string | undefined,
  resolve: (setting: string | undefined) => Resolved,
  opts: RetryOptions = {},
): Promise<RetryResolved> {
  const attempts = Math.max(1, opts.attempts ?? 6);
  const maxDelay = opts.maxDelayMs ?? 1600;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let delay = opts.delayMs ?? 100;
  let last: Resolved = { ok: false, message: 'builder-lsp was not looked up' };
  for (let i = 1; i <= attempts; i++) {
    last = resolve(readSetting());
    if (last.ok || i === attempts) return { ...last, attempts: i };
    const wait = Math.min(delay, maxDelay);
    opts.onRetry?.(i, wait, last);
    await sleep(wait);
    delay *= 2;
  }
  return { ...last, attempts };
}

export interface ModeFs {
  statSync(p: string): { isFile(): boolean; mode: number };
  chmodSync(p: string, mode: number): void;
}

/**
 * A bundled binary that lost its exec bits on the way (some zip tools drop them): add them for
 * whoever may read it (0644 → 0755). True when it was changed; never throws (a read-only
 * install folder just leaves the file as it was, and the lookup then passes over it).
 */
export function ensureExecutable(p: string, fs: ModeFs, platform: string = process.platform): boolean {
  if (platform === 'win32') return false;
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    const perm = st.mode & 0o777;
    const want = perm | ((perm & 0o444) >> 2) | 0o100;
    if (want === perm) return false;
    fs.chmodSync(p, want);
    return true;
  } catch {
    return false;
  }
}
