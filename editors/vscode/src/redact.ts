// Keeps API keys out of every log the extension writes (the output channel, and the protocol
// trace, which at `verbose` would otherwise print `initialize` with its `apiKeys`).

const MASK = '***';

/** Replaces every occurrence of each secret (4+ characters) and the values of any `apiKeys` object. */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join(MASK);
  }
  // Belt and braces for keys the extension does not know (e.g. typed into settings.json):
  // `"apiKeys": { "anthropic": "…", … }` keeps its provider names, loses its values.
  out = out.replace(/("apiKeys"\s*:\s*\{)([^{}]*)(\})/g, (_m, open: string, body: string, close: string) => {
    return open + body.replace(/("[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"/g, `$1"${MASK}"`) + close;
  });
  return out;
}
