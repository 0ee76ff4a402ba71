// Quick-pick items for "Builder: Generate…", from the `builder.models` result:
// `{defaultModel: string|null, providers: [{provider, name, configured, keyPresent, keyRequired,
// keySource, baseUrl, default}]}` (src/server/commands/models.rs, src/ai/config.rs `describe`).

import { PROVIDERS } from './providers';

export interface ProviderStatus {
  provider: string;
  name: string;
  configured: boolean;
  keyPresent: boolean;
  keyRequired: boolean;
  keySource?: string;
  baseUrl?: string | null;
}

export interface ModelsResult {
  defaultModel?: string;
  providers: ProviderStatus[];
}

export type ModelItemKind = 'model' | 'custom' | 'needsKey';

export interface ModelItem {
  label: string;
  description?: string;
  detail?: string;
  kind: ModelItemKind;
  /** The model id to send (`kind: 'model'`) or the provider to configure (`needsKey`). */
  model?: string;
  provider?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
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
 * Items: the last used model and the server's default first, then suggested models of every
 * configured provider, then "Enter a model id…", then providers that still need a key.
 * A provider is usable when the server says `configured`; Ollama and compatible servers have no
 * suggested ids (their models are whatever the user runs), so they go through the custom entry.
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
  for (const p of res.providers) {
    if (!p.configured) continue;
    const info = PROVIDERS.find((x) => x.id === p.provider);
    for (const m of info?.suggested ?? []) {
      add(m, p.name, p.keyPresent ? `key from ${p.keySource ?? 'settings'}` : undefined);
    }
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
