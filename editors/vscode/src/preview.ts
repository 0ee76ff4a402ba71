// The preview beside the code, wherever VS Code runs. Desktop: the sandbox's loopback URL as is.
// Remote-SSH / Codespaces: `asExternalUri` forwards the port. code-server and other web IDEs
// serve forwarded ports under a path (`/proxy/PORT/`), where a Vite app served from `/` loads
// its page but none of its modules: the sandbox is then created with `previewBase` (that path,
// `{{port}}` for the port), and the server's Vite serves under it, with or without the prefix.
// The pure parts are here (tested in test/pure.test.ts); the panel is in extension.ts.

export const PORT_PLACEHOLDER = '{{port}}';
/** A port nothing listens on, only to learn how the editor maps ports to URLs. */
export const PROBE_PORT = 54321;

/**
 * The `previewBase` to create a local sandbox with, from the `builder.preview.proxyBase`
 * setting and (for `auto`) the external form of `http://localhost:PROBE_PORT/`: its path with
 * the port replaced by `{{port}}` when the port appears in the path (a path-prefix proxy), else
 * none (the same URL, a forwarded port, or a per-port host like `https://5173-x.app.github.dev`).
 */
export function previewBase(setting: string | undefined, probeExternal: string | undefined): string | undefined {
  const s = (setting ?? 'auto').trim();
  if (s !== 'auto') {
    if (s === '' || s === '/' || s === 'off') return undefined;
    return s.endsWith('/') ? s : `${s}/`;
  }
  if (!probeExternal) return undefined;
  let path: string;
  try {
    path = new URL(probeExternal).pathname;
  } catch {
    return undefined;
  }
  const i = path.indexOf(String(PROBE_PORT));
  if (i < 0) return undefined;
  const base = path.slice(0, i) + PORT_PLACEHOLDER + path.slice(i + String(PROBE_PORT).length);
  return base.endsWith('/') ? base : `${base}/`;
}

/** Whether `auto` should ask the editor at all: web workbenches and code-server's host. */
export function shouldProbe(uiIsWeb: boolean, env: { VSCODE_PROXY_URI?: string }): boolean {
  return uiIsWeb || (env.VSCODE_PROXY_URI ?? '').includes(PORT_PLACEHOLDER);
}

/** The loopback URL the editor should map (`asExternalUri` only maps `localhost`). */
export function localhostForm(url: string): string {
  try {
    const u = new URL(url);
    if (u.hostname === '127.0.0.1' || u.hostname === '[::1]' || u.hostname === '::1') u.hostname = 'localhost';
    return u.toString();
  } catch {
    return url;
  }
}

export function portOf(url: string): number | undefined {
  try {
    const u = new URL(url);
    const p = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    return Number.isInteger(p) && p > 0 ? p : undefined;
  } catch {
    return undefined;
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The webview's page: a thin toolbar (URL, Reload, Open in Browser) over an iframe on `url`.
 * Only our nonce'd script runs in the webview; the app runs in the frame, on its own origin.
 */
export function panelHtml(url: string, nonce: string, cspSource: string): string {
  let origin = '*';
  try {
    origin = new URL(url).origin;
  } catch {
    // keep '*': the frame shows the browser's own error
  }
  const csp = [
    "default-src 'none'",
    `frame-src ${origin} http: https:`,
    `style-src ${cspSource} 'unsafe-inline'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escape(csp)}">
<style>
  html, body { margin: 0; padding: 0; height: 100%; overflow: hidden; }
  body { display: flex; flex-direction: column; }
  .bar { display: flex; gap: 6px; align-items: center; padding: 4px 6px; font: 12px var(--vscode-font-family);
         color: var(--vscode-foreground); background: var(--vscode-editorWidget-background); }
  .url { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; opacity: .8; }
  button { font: inherit; color: var(--vscode-button-foreground); background: var(--vscode-button-background);
           border: 0; padding: 2px 8px; cursor: pointer; }
  iframe { flex: 1; border: 0; width: 100%; background: white; }
</style>
</head>
<body>
<div class="bar"><span class="url" title="${escape(url)}">${escape(url)}</span>
<button id="reload" title="Reload the preview">Reload</button>
<button id="external" title="Open in the browser">Open in Browser</button></div>
<iframe id="app" src="${escape(url)}" allow="clipboard-read; clipboard-write" sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-modals"></iframe>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const frame = document.getElementById('app');
  document.getElementById('reload').addEventListener('click', () => { frame.src = frame.src; });
  document.getElementById('external').addEventListener('click', () => vscode.postMessage({ type: 'external' }));
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'reload') frame.src = e.data.url || frame.src;
  });
</script>
</body>
</html>`;
}
