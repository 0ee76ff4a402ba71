// Finding the builder-lsp binary: the `builder.serverPath` setting, then a build in the
// workspace (`target/release`, `target/debug`), then Cargo's bin folder, then PATH. The
// extension host's PATH is the least reliable (desktop launchers and code-server's login shell
// rebuild it), so it comes last; the output channel says which one was used.

import * as path from 'node:path';

export const INSTALL_HINT =
  'Install it with "cargo install builder-lsp" (or "cargo install --path ." in a clone of the builder-lsp repository), or set builder.serverPath to the binary.';

export type Resolved = { ok: true; path: string; source: 'setting' | 'workspace' | 'cargo' | 'PATH' } | { ok: false; message: string };

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
  workspaceDirs: readonly string[] = [],
): Resolved {
  const exe = platform === 'win32' ? 'builder-lsp.exe' : 'builder-lsp';
  const s = setting?.trim();
  if (s) {
    const p = s === '~' || s.startsWith('~/') ? path.join(env.HOME ?? '~', s.slice(1)) : s;
    if (isExecutable(p)) return { ok: true, path: p, source: 'setting' };
    return { ok: false, message: `builder.serverPath is "${s}", but no executable builder-lsp is there. ${INSTALL_HINT}` };
  }
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
  return { ok: false, message: `builder-lsp was not found (builder.serverPath, the workspace's target/release and target/debug, ~/.cargo/bin, PATH). ${INSTALL_HINT}` };
}
