// Argument objects for the server's commands. Every command takes ONE JSON object and refuses
// unknown fields, so these builders only ever set fields the server declares
// (src/server/commands/*.rs; sandbox and package commands per DESIGN.md §2).
//
// Waiting: the extension calls long commands with `wait: true` inside `window.withProgress`,
// passing its own `workDoneToken`; the server reports `$/progress` on that token, so the user
// sees the same messages as in task mode, and the extension gets the full result to show
// (files created/skipped, the preview URL, install failures). Cancel sends
// `window/workDoneProgress/cancel` for that token (the task stops and still answers with its
// partial result), then `$/cancelRequest` if nothing came back.

import type { PackageInput } from './packages';

export type Args = Record<string, unknown>;

/** `project` only when the workspace has several folders (the server picks the only one). */
function withProject(args: Args, project: string | undefined): Args {
  return project ? { ...args, project } : args;
}

export function generateArgs(o: { prompt: string; model?: string; uri?: string; project?: string }): Args {
  const a: Args = { prompt: o.prompt.trim(), wait: true };
  if (o.model) a.model = o.model;
  if (o.uri) a.uri = o.uri;
  return withProject(a, o.project);
}

export function applyArgs(response: string, project?: string): Args {
  return withProject({ response, wait: true }, project);
}

export function modelsArgs(project?: string): Args {
  return withProject({}, project);
}

/**
 * `builder.models` with each provider's own model list (`list: true`): every configured one, or
 * only `provider` ("Test connection"); `timeoutMs` per provider (server default 3000).
 */
export function modelsListArgs(o: { project?: string; provider?: string; timeoutMs?: number } = {}): Args {
  const a: Args = { list: true };
  if (o.provider) a.provider = o.provider;
  if (o.timeoutMs !== undefined) a.timeoutMs = Math.min(60000, Math.max(1, Math.round(o.timeoutMs)));
  return withProject(a, o.project);
}

/**
 * `open: false`: the extension opens the preview itself (beside the code, through the editor's
 * port mapping), not the server through `window/showDocument`.
 */
export function sandboxCreateArgs(provider: string | undefined, project?: string, previewBase?: string): Args {
  const a: Args = { wait: true, open: false };
  if (provider) a.provider = provider;
  if (previewBase) a.previewBase = previewBase;
  return withProject(a, project);
}

export function sandboxArgs(project?: string): Args {
  return withProject({}, project);
}

export function installArgs(input: Pick<PackageInput, 'packages' | 'dev'>, project?: string): Args {
  const a: Args = { packages: [...input.packages], wait: true };
  if (input.dev) a.dev = true;
  return withProject(a, project);
}

export function detectArgs(project?: string): Args {
  // Detect only; the extension asks before installing.
  return withProject({ install: false }, project);
}

export function zipArgs(project?: string): Args {
  return withProject({}, project);
}

export function resetArgs(project?: string): Args {
  return withProject({}, project);
}

export function cancelArgs(project?: string): Args {
  return withProject({}, project);
}

export function historyArgs(project?: string, limit?: number): Args {
  return withProject(limit ? { limit } : {}, project);
}

export function diffArgs(checkpoint: string, project?: string): Args {
  return withProject({ checkpoint }, project);
}

/** Reverts `checkpoint` and every later one; `force` also takes back files changed since. */
export function revertArgs(checkpoint: string, project?: string, force = false): Args {
  const a: Args = { checkpoint };
  if (force) a.force = true;
  return withProject(a, project);
}

/**
 * Which folder a command acts on: none needed with 0–1 folders; the active editor's folder when
 * it has one; otherwise the user must pick (`ask`).
 */
export function chooseProject(folders: readonly string[], activeFolder?: string): { project?: string; ask: boolean } {
  if (folders.length <= 1) return { ask: false };
  if (activeFolder && folders.includes(activeFolder)) return { project: activeFolder, ask: false };
  return { ask: true };
}
