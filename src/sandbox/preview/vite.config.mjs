// builder-lsp's preview overlay: written to <sandbox>/node_modules/.builder/vite.config.mjs and
// passed as `vite --config`, so the user's files stay untouched. It loads the user's own config
// and adds one plugin that reports the running app's browser errors as stdout lines
// `[builder:preview] {json}` (see README.md beside this file). Only 'vite' and node builtins.
import { loadConfigFromFile, mergeConfig } from 'vite'
import fs from 'node:fs'
import path from 'node:path'

const PREFIX = '[builder:preview] '
const ENDPOINT = '__builder/errors'
const CLIENT_URL = '/@builder/client.js'
const CLIENT_ID = '\0builder-preview-client'
const MAX_BODY = 64 * 1024
const MAX_FRAMES = 40
// Behind a path-prefix proxy (code-server's /proxy/PORT/): the URL path the page lives under.
const PROXY_BASE = /^\/[\w\-.~/]*\/$/.test(process.env.BUILDER_PREVIEW_BASE || '') ? process.env.BUILDER_PREVIEW_BASE : null

export default async (env) => {
  // Same lookup Vite does without --config; null when the project has no config file.
  const loaded = await loadConfigFromFile(env, undefined, process.cwd())
  const user = loaded?.config ?? {}
  const watch = loaded ? [loaded.path, ...(loaded.dependencies ?? [])] : []
  const plugins = [builderPreviewErrors(watch)]
  if (!PROXY_BASE || env.command !== 'serve') return mergeConfig(user, { plugins })
  // mergeConfig would keep the user's base over ours; the proxy's path has to win in dev.
  return { ...mergeConfig(user, { plugins: [builderProxyBase(PROXY_BASE), ...plugins] }), base: PROXY_BASE }
}

// Serves the app under `base` whichever way a request arrives: through a proxy that keeps the
// prefix (code-server's /absproxy/), one that strips it (/proxy/), or directly on the loopback
// port. Requests without the prefix get it added before Vite sees them (HMR's WebSocket too).
export function builderProxyBase(base) {
  const add = (req) => {
    const u = req.url || '/'
    if (u.startsWith(base) || u + '/' === base) return
    req.url = base + u.replace(/^\/+/, '')
  }
  return {
    name: 'builder-proxy-base',
    apply: 'serve',
    configureServer(server) {
      server.middlewares.use((req, _res, next) => { add(req); next() })
      server.httpServer?.prependListener('upgrade', (req) => add(req))
    },
  }
}

// The browser side. A string (not a function's source) so no bundler can rewrite it; it runs
// as a real module, before the app's (module scripts run in document order), with import.meta.hot.
const clientCode = (endpoint) => `
const ENDPOINT = ${JSON.stringify(endpoint)};
const page = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
const origError = console.error;
const pending = new Set();
let sent = 0, busy = false, lastError = 0;
const cut = (s, n) => (typeof s === 'string' && s.length > n ? s.slice(0, n) + '…' : s);
function post(body) {
  // Never throws, never reports its own failures (that could loop).
  try {
    const p = fetch(ENDPOINT, { method: 'POST', keepalive: true,
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .catch(() => {}).finally(() => pending.delete(p));
    pending.add(p);
  } catch {}
}
function report(kind, message, stack, extra) {
  if (busy || sent >= 50) return; // an error loop must not flood the server
  busy = true;
  try {
    sent++; lastError = Date.now();
    post({ kind, message: cut(String(message ?? ''), 8000), stack: cut(stack || null, 16000),
      ...extra, at: Date.now(), page, href: location.href });
  } catch {} finally { busy = false; }
}
function show(a) {
  if (a instanceof Error) return a.stack || String(a);
  if (typeof a === 'string') return a;
  if (a && typeof a === 'object') { try { return JSON.stringify(a); } catch { return String(a); } }
  return String(a);
}
function format(args) {
  // console-style %s/%o substitution (React logs through format strings), then the rest.
  let i = 1;
  const head = typeof args[0] !== 'string' ? (i = 0, '') : args[0].replace(/%([sdifoOjc%])/g, (m, c) =>
    c === '%' ? '%' : i >= args.length ? m : c === 'c' ? (i++, '') : show(args[i++]));
  return [head, ...args.slice(i).map(show)].filter((s, n) => n > 0 || s).join(' ');
}
// Capture phase: failed <script>/<link>/<img> loads fire 'error' on the element, not bubbling.
window.addEventListener('error', (e) => {
  try {
    const t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      const u = new URL(t.src || t.href, location.href);
      u.searchParams.delete('t'); u.searchParams.delete('v'); // Vite's cache-busting
      return report('load', 'Failed to load ' + (u.origin === location.origin ? u.pathname + u.search : u.href), null);
    }
    let stack = e.error && e.error.stack;
    if (!stack && e.filename) stack = e.message + '\\n    at ' + e.filename + ':' + e.lineno + ':' + e.colno;
    report('error', e.message || show(e.error), stack);
  } catch {}
}, true);
window.addEventListener('unhandledrejection', (e) => {
  try {
    const r = e.reason;
    report('rejection', r instanceof Error ? r.message : show(r), r instanceof Error ? r.stack : null);
  } catch {}
});
console.error = function (...args) {
  try {
    if (!busy) {
      const err = args.find((a) => a instanceof Error);
      report('console', format(args), err ? err.stack : new Error().stack);
    }
  } catch {}
  return origError.apply(this, args);
};
// A compile error Vite shows in its overlay (buffered by Vite until the page connects).
if (import.meta.hot) import.meta.hot.on('vite:error', (p) => {
  const err = (p && p.err) || {};
  report('vite', err.message, err.stack, { loc: err.loc || null, id: err.id || null,
    plugin: err.plugin || null, frame: cut(err.frame || null, 4000) });
});
post({ kind: 'page', page, at: Date.now(), href: location.href });
// A headless check's "done" marker: after load, 500 ms without a new error (3 s at most),
// and only once every earlier report has reached the server (so it is printed after them).
const check = new URLSearchParams(location.search).get('__builder_check');
if (check) {
  const start = () => {
    const loadedAt = Date.now();
    const tick = () => {
      const now = Date.now();
      if (now - Math.max(lastError, loadedAt) < 500 && now - loadedAt < 3000) return setTimeout(tick, 100);
      Promise.allSettled([...pending]).then(() => post({ kind: 'settled', check, page, at: Date.now(), href: location.href }));
    };
    setTimeout(tick, 100);
  };
  if (document.readyState === 'complete') start(); else window.addEventListener('load', start);
}
`

export function builderPreviewErrors(watch = []) {
  let root = process.cwd()
  let base = '/'
  return {
    name: 'builder-preview-errors',
    apply: 'serve',
    configResolved(c) {
      root = c.root
      base = c.base || '/'
    },
    resolveId(id) {
      if (id === CLIENT_URL || id === base + CLIENT_URL.slice(1)) return CLIENT_ID
    },
    load(id) {
      if (id === CLIENT_ID) return clientCode(base + ENDPOINT)
    },
    transformIndexHtml: {
      order: 'pre',
      handler: () => [{ tag: 'script', attrs: { type: 'module', src: base + CLIENT_URL.slice(1) }, injectTo: 'head-prepend' }],
    },
    configureServer(server) {
      // Vite watches its --config file (this one), not the user's: restart when theirs changes.
      let restarting = false
      const files = new Set(watch.map((f) => path.resolve(f)))
      const isConfig = (f) => path.dirname(f) === process.cwd() && /^vite\.config\.[cm]?[jt]s$/.test(path.basename(f))
      const restart = (f) => {
        f = path.resolve(f)
        if (restarting || !(files.has(f) || (!files.size && isConfig(f)))) return
        restarting = true
        server.config.logger.info(`${path.relative(root, f)} changed, restarting server...`, { timestamp: true })
        Promise.resolve(server.restart()).catch(() => {}).finally(() => { restarting = false })
      }
      try {
        for (const f of files) server.watcher.add(f)
        server.watcher.on('change', restart)
        server.watcher.on('add', restart) // a config created where there was none
      } catch {}
      // Added directly (not in a returned hook), so it runs before Vite's own middlewares.
      server.middlewares.use((req, res, next) => {
        if (req.method !== 'POST' || !(req.url || '').split('?')[0].endsWith('/' + ENDPOINT)) return next()
        const chunks = []
        let size = 0
        req.on('data', (c) => { size += c.length; if (size <= MAX_BODY) chunks.push(c) })
        req.on('error', () => {})
        req.on('end', async () => {
          try {
            if (size <= MAX_BODY) {
              const r = JSON.parse(Buffer.concat(chunks).toString('utf8'))
              if (r && typeof r === 'object' && typeof r.kind === 'string') {
                if (r.kind !== 'page' && r.kind !== 'settled') await locate(server, root, base, r)
                process.stdout.write(PREFIX + JSON.stringify(r) + '\n')
              }
            }
          } catch {} // bad JSON, or anything else: never take the dev server down
          try { res.statusCode = 204; res.end() } catch {}
        })
      })
    },
  }
}

// Adds `frames` (mapped to original sources) and makes `loc.file` project-relative.
async function locate(server, root, base, r) {
  r.frames = []
  // A compile error's stack is the dev server's own (Node), not the page's: its place is loc.
  if (r.kind === 'vite') {
    // Vite's loc has a 0-based column (Babel's has no file: err.id is it); without a loc (Vite
    // 8's oxc parse errors) the message's "╭─[ src/App.jsx:5:20 ]" is 1-based; else just err.id.
    const m = /─\[\s*(.+?):(\d+):(\d+)\s*\]/.exec(r.message || '')
    const id = r.id && path.isAbsolute(String(r.id).split('?')[0]) ? r.id : null
    if (r.loc?.line && (r.loc.file || id)) r.loc = { file: r.loc.file || id, line: r.loc.line, column: typeof r.loc.column === 'number' ? r.loc.column + 1 : null }
    else if (m) r.loc = { file: path.resolve(root, m[1]), line: +m[2], column: +m[3] }
    else if (id) r.loc = { file: id, line: null, column: null }
    if (r.loc?.file) r.loc.file = relFile(root, r.loc.file)
    if (r.loc?.file) r.frames.push({ fn: null, url: null, file: r.loc.file, line: r.loc.line ?? null, column: r.loc.column ?? null })
    return
  }
  if (typeof r.stack !== 'string') return
  const graph = server.environments?.client?.moduleGraph ?? server.moduleGraph
  for (const l of r.stack.split('\n')) {
    if (r.frames.length >= MAX_FRAMES) break
    // Chrome: "    at fn (URL:L:C)" / "    at URL:L:C"; Firefox/Safari: "fn@URL:L:C".
    const m = /^\s*at (?:(.*?) \()?(\w+:\/\/.*?):(\d+):(\d+)\)?\s*$/.exec(l) || /^\s*(.*?)@(\w+:\/\/.*?):(\d+):(\d+)\s*$/.exec(l)
    if (!m) continue
    const frame = { fn: m[1] || null, url: m[2], file: null, line: +m[3], column: +m[4] }
    r.frames.push(frame)
    try {
      let url = m[2].replace(/^\w+:\/\/[^/]*/, '')
      if (base !== '/' && url.startsWith(base)) url = url.slice(base.length - 1)
      // Drop Vite's cache-busting queries; keep meaningful ones (?raw, ?vue&type=...).
      const [p, q = ''] = url.split('?')
      const query = q.split('&').filter((kv) => kv && !/^(t|v|import)(=|$)/.test(kv)).join('&')
      url = decodeURIComponent(p) + (query ? '?' + query : '')
      if (/^\/(@vite\/|@react-refresh|@id\/|@builder\/)|\/node_modules\//.test(url)) continue
      const mod = (await graph?.getModuleByUrl(url)) || (query ? await graph?.getModuleByUrl(p) : null)
      let file = mod?.file || (url.startsWith('/@fs/') ? url.slice(4) : path.join(root, url.split('?')[0]))
      if (!mod && !fs.existsSync(file)) continue
      frame.file = relFile(root, file)
      const map = mod?.transformResult?.map
      const pos = map && typeof map.mappings === 'string' ? originalPosition(map.mappings, frame.line, frame.column) : null
      if (pos && (map.sources?.length ?? 0) > 0) [frame.line, frame.column] = pos
    } catch {}
  }
}

// Project-relative with '/', absolute outside the root, null inside node_modules.
function relFile(root, file) {
  file = String(file).split('?')[0]
  if (/[\\/]node_modules[\\/]/.test(file)) return null
  const rel = path.relative(root, file)
  const out = rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(file) : rel
  return out.split(path.sep).join('/')
}

// Source map v3 `mappings` lookup. Browser positions are 1-based, map segments 0-based; the
// answer is the segment with the greatest generated column <= the position on that line.
const B64 = Object.fromEntries([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]))
function originalPosition(mappings, line, column) {
  const lines = mappings.split(';')
  if (line < 1 || line > lines.length) return null
  let src = 0, srcLine = 0, srcCol = 0, name = 0 // running values across the whole map
  for (let i = 0; i < line; i++) {
    let genCol = 0, best = null, first = null
    for (const seg of lines[i].split(',')) {
      if (!seg) continue
      const v = decodeVlq(seg)
      genCol += v[0]
      if (v.length >= 4) {
        src += v[1]; srcLine += v[2]; srcCol += v[3]
        if (v.length >= 5) name += v[4]
        if (i === line - 1) {
          const pos = [srcLine + 1, srcCol + 1]
          first ??= pos
          if (genCol <= column - 1) best = pos
        }
      }
    }
    if (i === line - 1) return best ?? first
  }
  return null
}
function decodeVlq(seg) {
  const out = []
  let value = 0, shift = 0
  for (const c of seg) {
    const d = B64[c]
    if (d === undefined) break
    value += (d & 31) << shift
    if (d & 32) { shift += 5; continue }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1)
    value = 0; shift = 0
  }
  return out
}
