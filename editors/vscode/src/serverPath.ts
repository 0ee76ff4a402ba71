// Finding the builder-lsp binary: the `builder.serverPath` setting, then PATH, then Cargo's bin
// folder (editors started from a desktop launcher often lack ~/.cargo/bin on PATH).

import * as path from 'node:path';

export const INSTALL_HINT =
  'Install it with "cargo install builder-lsp" (or "cargo install --path ." in a clone of the builder-lsp repository), or set builder.serverPath to the binary.';

export type Resolved = { ok: true; path: string; source: 'setting' | 'PATH' | 'cargo' } | { ok: false; message: string };

export interface Env {
  PATH?: string;
  HOME?: string;
  CARGO_HOME?: string;
}

export function resolveServerPath(
  setting: string | undefined,
  env: Env,
  isExecutable: (p: string) => boolean,
  platform: string = process.platform,
): Resolved {
  const exe = platform === 'win32' ? 'builder-lsp.exe' : 'builder-lsp';
  const s = setting?.trim();
  if (s) {
    const p = s === '~' || s.startsWith('~/') ? path.join(env.HOME ?? '~', s.slice(1)) : s;
    if (isExecutable(p)) return { ok: true, path: p, source: 'setting' };
    return { ok: false, message: `builder.serverPath is "${s}", but no executable builder-lsp is there. ${INSTALL_HINT}` };
  }
  const sep = platform === 'win32' ? ';' : ':';
  for (const dir of (env.PATH ?? '').split(sep)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    if (isExecutable(p)) return { ok: true, path: p, source: 'PATH' };
  }
  const cargoHome = env.CARGO_HOME ?? (env.HOME ? path.join(env.HOME, '.cargo') : undefined);
  if (cargoHome) {
    const p = path.join(cargoHome, 'bin', exe);
    if (isExecutable(p)) return { ok: true, path: p, source: 'cargo' };
  }
  return { ok: false, message: `builder-lsp was not found on PATH. ${INSTALL_HINT}` };
}
