// Model providers as builder-lsp knows them (`provider/model` ids; DESIGN.md §6).

export interface ProviderInfo {
  readonly id: string;
  readonly name: string;
  /** The environment variable the server reads the key from, if any. */
  readonly envVar?: string;
  /** Whether generation needs a key (Ollama does not; a compatible server may not). */
  readonly keyRequired: boolean;
  /** A few current model ids to offer in the quick pick (the server does not list models). */
  readonly suggested: readonly string[];
}

export const PROVIDERS: readonly ProviderInfo[] = [
  {
    id: 'anthropic',
    name: 'Anthropic',
    envVar: 'ANTHROPIC_API_KEY',
    keyRequired: true,
    suggested: ['anthropic/claude-sonnet-4-5', 'anthropic/claude-opus-4-1', 'anthropic/claude-haiku-4-5'],
  },
  {
    id: 'openai',
    name: 'OpenAI',
    envVar: 'OPENAI_API_KEY',
    keyRequired: true,
    suggested: ['openai/gpt-4.1', 'openai/gpt-4.1-mini', 'openai/gpt-5'],
  },
  {
    id: 'google',
    name: 'Gemini',
    envVar: 'GEMINI_API_KEY',
    keyRequired: true,
    suggested: ['google/gemini-2.5-flash', 'google/gemini-2.5-pro'],
  },
  {
    id: 'groq',
    name: 'Groq',
    envVar: 'GROQ_API_KEY',
    keyRequired: true,
    suggested: ['groq/openai/gpt-oss-120b', 'groq/moonshotai/kimi-k2-instruct'],
  },
  {
    id: 'openrouter',
    name: 'OpenRouter',
    envVar: 'OPENROUTER_API_KEY',
    keyRequired: true,
    suggested: ['openrouter/anthropic/claude-sonnet-4.5', 'openrouter/openai/gpt-4.1'],
  },
  { id: 'ollama', name: 'Ollama', keyRequired: false, suggested: [] },
  { id: 'compatible', name: 'OpenAI-compatible server', keyRequired: false, suggested: [] },
];

/** Providers whose key can be set with "Builder: Set API Key…" (Ollama has none). */
export const KEYED_PROVIDERS: readonly ProviderInfo[] = PROVIDERS.filter((p) => p.id !== 'ollama');

export const PROVIDER_IDS: readonly string[] = PROVIDERS.map((p) => p.id);

/** The SecretStorage key of a provider's API key. */
export function secretKey(provider: string): string {
  return `builder.apiKey.${provider}`;
}
