// What the server gets from the editor's settings.
//
// - `workspace/configuration` (section `builder`) answers with `toServerSettings`: an allow-list
//   of server settings, so `apiKeys` (or anything else a user typed into settings.json) never
//   travels there, and neither do client-only settings (`serverPath`, `trace`).
// - `initializationOptions` carries `streamDeltas` and the keys from SecretStorage.

/** Settings the server understands (src/config.rs), by their key under `builder.`. */
export const SERVER_KEYS = [
  'model',
  'temperature',
  'maxTokens',
  'maxResponseBytes',
  'allowProtected',
  'streamDeltas',
  'baseUrls',
  'contextTokens',
  'continueTruncated',
  'sandbox',
  'completion',
  'review',
  'autoFix',
] as const;

/** Client-only settings (never sent to the server). */
export const CLIENT_KEYS = ['serverPath', 'trace', 'saveAfterApply', 'preview'] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function clean(v: unknown): Json | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(clean).filter((x): x is Json => x !== undefined);
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const c = clean(x);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }
  return undefined;
}

/**
 * The `builder` section as the server should see it. `get` reads one key of the section (VS Code's
 * `WorkspaceConfiguration.get`). Empty strings and nulls are dropped, so unset settings leave the
 * server's environment (`DEFAULT_AI_MODEL`, `MAX_TOKENS`, …) in force.
 */
export function toServerSettings(get: (key: string) => unknown): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const key of SERVER_KEYS) {
    const v = clean(get(key));
    if (v === undefined) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[key] = v;
  }
  return out;
}

export interface InitOptions {
  streamDeltas: boolean;
  apiKeys?: Record<string, string>;
}

/** `initializationOptions`: deltas on unless turned off; only non-empty keys. */
export function initializationOptions(streamDeltas: unknown, keys: Record<string, string | undefined>): InitOptions {
  const apiKeys: Record<string, string> = {};
  for (const [provider, key] of Object.entries(keys)) {
    if (typeof key === 'string' && key.trim() !== '') apiKeys[provider] = key.trim();
  }
  const out: InitOptions = { streamDeltas: streamDeltas !== false };
  if (Object.keys(apiKeys).length > 0) out.apiKeys = apiKeys;
  return out;
}

/** Whether a configuration change needs a new server process (not just a settings refresh). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects('builder.serverPath') || affects('builder.streamDeltas');
}
