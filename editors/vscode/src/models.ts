// Quick-pick items for "Builder: Generate…", from the `builder.models` result:
// `{defaultModel: string|null, providers: [{provider, name, configured, keyPresent, keyRequired,
// keySource, baseUrl, default, models}]}` (src/server/commands/models.rs, src/ai/config.rs
// `providers`). With `{list: true}` (src/ai/models_list.rs) a listed provider's entry also has
// `listedModels` (its server's own `provider/model` ids), `listedCount`, `reachable`, `error?`
// and `latencyMs?`; `{provider, list: true}` is "Test connection".

import { PROVIDERS } from './providers';

export interface ProviderStatus {
  provider: string;
  name: string;
  configured: boolean;
  keyPresent: boolean;
  keyRequired: boolean;
  keySource?: string;
  baseUrl?: string | null;
  /** Present when the provider was listed (`list: true`). */
  listing?: ProviderListing;
}

/** What the provider's own server said when asked for its models. */
export interface ProviderListing {
  /** `provider/model` ids, as the server sorted them. */
  models: string[];
  /** Distinct models the server listed (may exceed `models.length`: the server caps at 200). */
  count: number;
  reachable: boolean;
  error?: string;
  latencyMs?: number;
}

export interface ModelsResult {
  defaultModel?: string;
  providers: ProviderStatus[];
}

export type ModelItemKind = 'model' | 'custom' | 'needsKey' | 'test';

export interface ModelItem {
  label: string;
  description?: string;
  detail?: string;
  kind: ModelItemKind;
  /**
   * The model id to send (`kind: 'model'`), the provider to configure (`needsKey`) or to test
   * (`test`; absent → ask which).
   */
  model?: string;
  provider?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

const MAX_LISTED = 500;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** The listing fields of one provider entry, when it has them (`reachable` says it was listed). */
function parseListing(id: string, r: Record<string, unknown>): ProviderListing | undefined {
  if (typeof r.reachable !== 'boolean') return undefined;
  const models: string[] = [];
  const seen = new Set<string>();
  for (const m of Array.isArray(r.listedModels) ? r.listedModels : []) {
    const t = str(m)?.trim();
    if (!t || /\s/.test(t)) continue;
    const full = providerOf(t) === id ? t : `${id}/${t}`;
    if (seen.has(full)) continue;
    seen.add(full);
    models.push(full);
    if (models.length >= MAX_LISTED) break;
  }
  return {
    models,
    count: Math.max(num(r.listedCount) ?? 0, models.length),
    reachable: r.reachable,
    error: str(r.error),
    latencyMs: num(r.latencyMs),
  };
}

/** Reads a `builder.models` result defensively; unknown shapes give an empty list. */
export function parseModelsResult(v: unknown): ModelsResult {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  const list = Array.isArray(o.providers) ? o.providers : [];
  const providers: ProviderStatus[] = [];
  for (const p of list) {
    if (!p || typeof p !== 'object') continue;
    const r = p as Record<string, unknown>;
    const id = str(r.provider);
    if (!id) continue;
    providers.push({
      provider: id,
      name: str(r.name) ?? id,
      configured: r.configured === true,
      keyPresent: r.keyPresent === true,
      keyRequired: r.keyRequired !== false,
      keySource: str(r.keySource),
      baseUrl: str(r.baseUrl) ?? null,
      listing: parseListing(id, r),
    });
  }
  return { defaultModel: str(o.defaultModel), providers };
}

/** The provider part of a `provider/model` id. */
export function providerOf(model: string): string {
  const i = model.indexOf('/');
  return i > 0 ? model.slice(0, i) : '';
}

/**
 * Items: the last used model and the server's default first, then the models the configured
 * providers' own servers listed (`list: true`), then suggested models of every configured
 * provider, then a warning item per configured provider that could not be listed (picking it
 * tests that provider again), "Test connection…", "Enter a model id…", and providers that still
 * need a key. A provider is usable when the server says `configured`; Ollama and compatible
 * servers have no suggested ids, so without a listing they go through the custom entry.
 */
export function modelPickItems(res: ModelsResult, lastUsed?: string): ModelItem[] {
  const items: ModelItem[] = [];
  const seen = new Set<string>();
  const usable = new Set(res.providers.filter((p) => p.configured).map((p) => p.provider));
  const add = (model: string, description: string | undefined, detail?: string) => {
    if (seen.has(model)) return;
    seen.add(model);
    items.push({ label: model, description, detail, kind: 'model', model, provider: providerOf(model) });
  };
  if (lastUsed && usable.has(providerOf(lastUsed))) {
    add(lastUsed, lastUsed === res.defaultModel ? 'last used · default' : 'last used');
  }
  if (res.defaultModel) add(res.defaultModel, 'default');
  const configured = res.providers.filter((p) => p.configured);
  for (const p of configured) {
    if (!p.listing?.reachable) continue;
    for (const m of p.listing.models) add(m, `${p.name} · on the server`);
  }
  for (const p of configured) {
    const info = PROVIDERS.find((x) => x.id === p.provider);
    for (const m of info?.suggested ?? []) {
      add(m, p.name, p.keyPresent ? `key from ${p.keySource ?? 'settings'}` : undefined);
    }
  }
  for (const p of configured) {
    if (!p.listing || p.listing.reachable) continue;
    items.push({
      label: `$(warning) ${p.name}: could not list models`,
      description: 'pick to test the connection again',
      detail: p.listing.error,
      kind: 'test',
      provider: p.provider,
    });
  }
  if (res.providers.length > 0) {
    items.push({
      label: 'Test connection…',
      description: "ask a provider's server for its models",
      kind: 'test',
    });
  }
  items.push({
    label: 'Enter a model id…',
    description: 'provider/model, e.g. ollama/qwen2.5-coder or compatible/my-model',
    kind: 'custom',
  });
  for (const p of res.providers) {
    if (p.configured || !p.keyRequired) continue;
    items.push({
      label: `Set ${p.name} key…`,
      description: 'not configured',
      detail: `No key: set ${p.keySource ?? 'one'} or store one with Builder: Set API Key…`,
      kind: 'needsKey',
      provider: p.provider,
    });
  }
  return items;
}

/** Providers to offer for "Test connection…": configured ones first. */
export function testPickItems(res: ModelsResult): { label: string; description: string; provider: string }[] {
  const order = [...res.providers.filter((p) => p.configured), ...res.providers.filter((p) => !p.configured)];
  return order.map((p) => ({
    label: p.name,
    description: p.configured ? (p.baseUrl ?? 'configured') : 'not configured',
    provider: p.provider,
  }));
}

/** The message for a "Test connection" answer (`builder.models {provider, list: true}`). */
export function connectionSummary(res: ModelsResult, provider: string): { level: 'info' | 'error'; message: string } {
  const p = res.providers.find((x) => x.provider === provider);
  const name = p?.name ?? provider;
  const l = p?.listing;
  if (!l) return { level: 'error', message: `${name}: the server did not report a listing` };
  if (!l.reachable) return { level: 'error', message: `${name}: ${l.error ?? 'not reachable'}` };
  const parts = [`${name}: reachable`, `${l.count} ${l.count === 1 ? 'model' : 'models'}`];
  if (l.latencyMs !== undefined) parts.push(`${Math.round(l.latencyMs)} ms`);
  return { level: 'info', message: parts.join(', ') };
}

/** Validation of a typed model id (`provider/model` with a known provider). */
export function validateModelId(text: string): string | undefined {
  const t = text.trim();
  const provider = providerOf(t);
  if (!provider || t.length <= provider.length + 1) return 'Use provider/model, e.g. anthropic/claude-sonnet-4-5';
  if (!PROVIDERS.some((p) => p.id === provider)) {
    return `Unknown provider "${provider}" (one of ${PROVIDERS.map((p) => p.id).join(', ')})`;
  }
  return undefined;
}
