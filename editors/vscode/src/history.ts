// The project's checkpoints as the extension shows them: `builder.history` entries in a quick
// pick, which one "Builder: Undo Last Generation" takes back, and what a revert reports.
// Pure (no VS Code), so it is tested without an editor.

import type { Summary } from './results';

export type Change = 'created' | 'updated' | 'deleted';

export interface HistoryFile {
  path: string;
  change: Change;
}

/** One `builder.history` entry (newest first in the server's answer). */
export interface HistoryEntry {
  id: string;
  time: string;
  source: string;
  summary: string;
  model?: string;
  files: HistoryFile[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The checkpoint sources that a generation or an applied answer records. */
export const GENERATION_SOURCES: readonly string[] = ['generate', 'apply'];

/** `builder.history`'s answer; entries without an id are dropped. */
export function parseHistory(result: unknown): HistoryEntry[] {
  return list(result)
    .map((e) => {
      const o = obj(e);
      const files = list(o.files)
        .map((f) => {
          const fo = obj(f);
          const change = str(fo.change);
          return {
            path: str(fo.path),
            change: (change === 'created' || change === 'deleted' ? change : 'updated') as Change,
          };
        })
        .filter((f) => f.path !== '');
      const entry: HistoryEntry = { id: str(o.id), time: str(o.time), source: str(o.source), summary: str(o.summary), files };
      if (str(o.model)) entry.model = str(o.model);
      return entry;
    })
    .filter((e) => e.id !== '');
}

/** "just now", "5 min ago", "3 h ago", else the date and time (UTC, minutes). */
export function formatTime(iso: string, now: Date = new Date()): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.round((now.getTime() - t) / 1000);
  if (s >= 0 && s < 45) return 'just now';
  if (s >= 0 && s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s >= 0 && s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

const MARK: Record<Change, string> = { created: '+', updated: '~', deleted: '-' };

/** "+src/App.jsx ~src/index.css" (at most `max` names, then "+N more"). */
export function filesLine(files: readonly HistoryFile[], max = 6): string {
  const shown = files.slice(0, max).map((f) => `${MARK[f.change]}${f.path}`);
  if (files.length > max) shown.push(`+${files.length - max} more`);
  return shown.join(' ') || 'no files';
}

export interface HistoryPickItem {
  label: string;
  description: string;
  detail: string;
  id: string;
}

/** Quick-pick rows: summary, then source · time · model, then the files. */
export function historyPickItems(entries: readonly HistoryEntry[], now: Date = new Date()): HistoryPickItem[] {
  return entries.map((e) => ({
    label: e.summary || `${e.source} ${e.id}`,
    description: [e.source, formatTime(e.time, now), e.model].filter(Boolean).join(' · '),
    detail: filesLine(e.files),
    id: e.id,
  }));
}

/** The checkpoint a `revert` entry took back (the server names it in the summary: `revert ID`). */
export function revertedId(e: HistoryEntry): string | undefined {
  if (e.source !== 'revert') return undefined;
  return /^revert (\S+)$/.exec(e.summary.trim())?.[1];
}

/**
 * What "Undo Last Generation" reverts: the newest checkpoint from a generation or an applied
 * answer that is still in effect, and the newer checkpoints a revert of it takes back too (the
 * server reverts a checkpoint with everything after it), so the user can be asked first.
 * A `revert ID` entry undid ID and everything after it: those are skipped, so a second Undo
 * goes one generation further back (and a revert of a revert, a redo, brings its target back).
 */
export function lastGeneration(entries: readonly HistoryEntry[]): { target?: HistoryEntry; later: HistoryEntry[] } {
  let skipUntil: string | undefined;
  /** Newer checkpoints still in effect (a revert and what it undid cancel out). */
  const live: HistoryEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (skipUntil !== undefined) {
      if (e.id === skipUntil) skipUntil = undefined;
      continue;
    }
    const undone = revertedId(e);
    if (undone !== undefined && entries.slice(i + 1).some((x) => x.id === undone)) {
      skipUntil = undone;
      continue;
    }
    if (GENERATION_SOURCES.includes(e.source)) return { target: e, later: live };
    live.push(e);
  }
  return { later: [] };
}

export interface Reverted {
  summary: Summary;
  /** Files changed since the checkpoint, left alone: "Revert Anyway" passes `force: true`. */
  conflicts: string[];
}

/** `builder.revert` → `{filesRestored, filesDeleted, conflicts, unchanged, applied, errors}`. */
export function revertSummary(result: unknown): Reverted {
  const r = obj(result);
  const strings = (v: unknown) => list(v).map(str).filter((s) => s !== '');
  const restored = strings(r.filesRestored);
  const deleted = strings(r.filesDeleted);
  const unchanged = strings(r.unchanged);
  const errors = strings(r.errors);
  const conflicts = list(r.conflicts).map((c) => {
    const o = obj(c);
    return str(o.path) || str(c);
  });
  const conflictLines = list(r.conflicts).map((c) => {
    const o = obj(c);
    return str(o.reason) ? `${str(o.path)} (${str(o.reason)})` : str(o.path) || str(c);
  });
  const parts: string[] = [];
  if (restored.length) parts.push(`restored ${restored.join(', ')}`);
  if (deleted.length) parts.push(`deleted ${deleted.join(', ')}`);
  if (unchanged.length) parts.push(`already as before: ${unchanged.join(', ')}`);
  if (conflictLines.length) parts.push(`changed since, left alone: ${conflictLines.join('; ')}`);
  if (errors.length) parts.push(errors.join('; '));
  const changed = restored.length + deleted.length;
  // The server's own `message` is written for clients without buttons ("pass force: true");
  // here the conflicts get a "Revert Anyway" button instead.
  const head = changed ? `Reverted ${changed} file${changed === 1 ? '' : 's'}` : 'Nothing reverted';
  const level = errors.length || r.applied === false ? 'error' : conflicts.length || changed === 0 ? 'warning' : 'info';
  return {
    summary: { level, message: parts.length ? `${head} — ${parts.join('; ')}` : head, changedFiles: restored.length },
    conflicts,
  };
}
