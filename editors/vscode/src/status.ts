// The sandbox status-bar item: text, tooltip and whether to keep polling, from
// `builder.sandbox.status` → `{active, healthy, provider, sandboxId, url, uptimeSeconds, isolation}`.

export type SandboxState = 'none' | 'starting' | 'running' | 'unhealthy';

export interface SandboxView {
  state: SandboxState;
  text: string;
  tooltip: string;
  url?: string;
  provider?: string;
  sandboxId?: string;
}

function s(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function formatUptime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const m = Math.floor(seconds / 60);
  if (m < 1) return `${Math.floor(seconds)}s`;
  const h = Math.floor(m / 60);
  return h < 1 ? `${m} min` : `${h} h ${m % 60} min`;
}

export function noneView(reason?: string): SandboxView {
  return {
    state: 'none',
    text: '$(vm-outline) No sandbox',
    tooltip: reason ? `Builder sandbox: none (${reason})` : 'Builder sandbox: none — click to create one',
  };
}

export function startingView(provider: string): SandboxView {
  return {
    state: 'starting',
    text: `$(sync~spin) Sandbox starting (${provider})`,
    tooltip: `Builder: creating a ${provider} sandbox…`,
    provider,
  };
}

/** The view for a status result (anything unexpected reads as "none"). */
export function viewFromStatus(result: unknown): SandboxView {
  const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
  if (r.active !== true) return noneView();
  const provider = s(r.provider) ?? 'sandbox';
  const url = s(r.url);
  const uptime = typeof r.uptimeSeconds === 'number' ? formatUptime(r.uptimeSeconds) : '';
  const lines = [
    `Builder sandbox ${s(r.sandboxId) ?? ''}`.trim(),
    `provider: ${provider}${s(r.isolation) ? `, isolation: ${s(r.isolation)}` : ''}`,
    url ? `preview: ${url}` : 'no preview URL yet',
    uptime ? `up ${uptime}` : '',
  ].filter((l) => l !== '');
  if (r.healthy === false) {
    return {
      state: 'unhealthy',
      text: `$(warning) Sandbox: ${provider} (unhealthy)`,
      tooltip: [...lines, 'the dev server does not answer — see Builder: Sandbox Status'].join('\n'),
      url,
      provider,
      sandboxId: s(r.sandboxId),
    };
  }
  return {
    state: 'running',
    text: `$(vm-running) Sandbox: ${provider}`,
    tooltip: [...lines, 'click to open the preview'].join('\n'),
    url,
    provider,
    sandboxId: s(r.sandboxId),
  };
}

/** "Builder: Sandbox Status" as one line (the tooltip's facts, without its click hint). */
export function statusMessage(v: SandboxView): string {
  if (v.state === 'none') {
    const why = /\((.*)\)$/.exec(v.tooltip)?.[1];
    return `Builder: no sandbox is running${why ? ` (${why})` : ''}`;
  }
  const facts = v.tooltip
    .split('\n')
    .filter((l) => !/^click to /.test(l))
    .join(' · ');
  return `Builder: ${facts.replace(/^Builder sandbox/, 'sandbox')}`;
}

/** Poll only while a sandbox exists or is starting. */
export function shouldPoll(view: SandboxView): boolean {
  return view.state !== 'none';
}

/** Seconds between background status checks. */
export const POLL_SECONDS = 30;
