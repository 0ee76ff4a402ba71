// Parsing what a user types into "Builder: Install Packages…".

export interface PackageInput {
  packages: string[];
  dev: boolean;
  /** Tokens that are not npm package names (shown to the user, never sent). */
  invalid: string[];
}

const DEV_FLAGS = new Set(['-d', '--dev', '--save-dev', '-dev']);
const MANAGERS = new Set(['npm', 'pnpm', 'yarn', 'bun']);
const VERBS = new Set(['i', 'install', 'add']);
// npm names: optional @scope/, then URL-safe characters; an optional @version/range/tag.
const NAME = /^(@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*(@[^\s,@][^\s,]*)?$/i;

/**
 * Splits on spaces and commas; accepts a pasted `npm install -D a b` (the manager and verb are
 * dropped, `-D`/`--dev`/`--save-dev` set `dev`); removes duplicates, keeping the first.
 */
export function parsePackageInput(text: string): PackageInput {
  const tokens = text.split(/[\s,]+/).filter((t) => t.length > 0);
  let start = 0;
  if (tokens.length > 0 && MANAGERS.has(tokens[0].toLowerCase())) {
    start = 1;
    if (tokens.length > 1 && VERBS.has(tokens[1].toLowerCase())) start = 2;
  }
  const out: PackageInput = { packages: [], dev: false, invalid: [] };
  const seen = new Set<string>();
  for (const t of tokens.slice(start)) {
    if (DEV_FLAGS.has(t.toLowerCase())) {
      out.dev = true;
      continue;
    }
    if (!NAME.test(t) || t.length > 214 + 64) {
      out.invalid.push(t);
      continue;
    }
    if (!seen.has(t)) {
      seen.add(t);
      out.packages.push(t);
    }
  }
  return out;
}

/** The input box's validation message, or undefined when the input can be sent. */
export function validatePackageInput(text: string): string | undefined {
  const p = parsePackageInput(text);
  if (p.invalid.length > 0) return `Not a package name: ${p.invalid.join(', ')}`;
  if (p.packages.length === 0) return 'Enter one or more package names, e.g. "react-router-dom zod" (add -D for dev)';
  return undefined;
}
