/** Output helpers: ages, tables, YAML, colours. */
import type { JobView } from '../actors/protocol.js';

/** Coarse age of `t` at `now`: `3s`, `5m`, `2h`, `4d`, `1y` (never negative). */
export function age(t: string | number | Date, now: number = Date.now()): string {
  const from = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t);
  if (Number.isNaN(from)) return '?';
  const s = Math.max(0, Math.floor((now - from) / 1000));
  const days = Math.floor(s / 86400);
  if (days >= 365) return `${Math.floor(days / 365)}y`;
  if (days > 0) return `${days}d`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*m/g;

/** Length as shown on a terminal (ANSI colour codes do not count). */
export function visibleLength(s: string): number {
  return [...s.replace(ANSI_RE, '')].length;
}

/** A plain-text table: headers upper-cased, columns aligned and separated by 3 spaces, no trailing blanks. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => visibleLength(r[c] ?? ''))));
  return all
    .map((r) =>
      headers
        .map((_, c) => {
          const cell = r[c] ?? '';
          return c === headers.length - 1 ? cell : cell + ' '.repeat(widths[c]! - visibleLength(cell));
        })
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

/** YAML text of a value (the yaml package is loaded on first use). */
export async function toYaml(value: unknown): Promise<string> {
  const { stringify } = await import('yaml');
  return stringify(value);
}

/** Colours are used only on a TTY and when NO_COLOR is unset (or empty, per no-color.org). */
export function colorEnabled(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!stream.isTTY && !env.NO_COLOR;
}

export interface Palette {
  red(s: string): string;
  brightRed(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export function palette(enabled: boolean): Palette {
  const wrap = (open: string, close: string) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { red: wrap('31', '39'), brightRed: wrap('91', '39'), yellow: wrap('33', '39'), dim: wrap('2', '22'), bold: wrap('1', '22') };
}

/** ISO-8601 in local time with the UTC offset, to the second: `2024-05-01T14:03:09+02:00`. */
export function localIso(d: Date): string {
  const p = (n: number) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${zone}`;
}

/** The first 3 tags joined by ', ', then ' ...' if there are more. */
export function tagsCell(tags: readonly string[]): string {
  return tags.slice(0, 3).join(', ') + (tags.length > 3 ? ' ...' : '');
}

/** Number of GPUs in a grant. */
export function grantSize(acquired: Record<string, number[]>): number {
  return Object.values(acquired).reduce((n, g) => n + g.length, 0);
}

/** When the job was created (its first state change). */
export function createdAt(job: JobView): string | undefined {
  return job.history[0]?.at;
}

/** Rows NAME TAGS CREATED STATUS GPU for `job list`, newest first. */
export function jobRows(jobs: readonly JobView[], now: number = Date.now(), colors: Palette = palette(false)): string[][] {
  return sortNewestFirst(jobs).map((j) => {
    const last = j.history.at(-1)?.at;
    const waits = (j.state === 'QUEUED' || j.state === 'PAUSED') && j.queuePosition;
    const queued = waits ? ` #${j.queuePosition}${j.queueReason ? `: ${j.queueReason}` : ''}` : j.state === 'PAUSED' && j.reason ? `: ${j.reason}` : '';
    const status = `${j.state}${last ? ` ${age(last, now)}` : ''}${queued}`;
    const created = createdAt(j);
    return [
      j.name,
      tagsCell(j.tags),
      created ? age(created, now) : '',
      j.state === 'ERROR' || j.state === 'INVALID' ? colors.brightRed(status) : status,
      `${grantSize(j.acquired)}/${j.spec.resources.max}`,
    ];
  });
}

export function sortNewestFirst(jobs: readonly JobView[]): JobView[] {
  const t = (j: JobView) => Date.parse(createdAt(j) ?? '') || 0;
  return [...jobs].sort((a, b) => t(b) - t(a));
}
