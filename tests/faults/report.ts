/**
 * The fault suite's summary: every fault test file records what it tried and what came of it, and
 * prints one table when it ends, so a CI log shows the kinds tried, their outcomes and anything lost
 * without reading the assertions.
 */
import { after } from 'node:test';

export interface FaultRow {
  /** What was done to the system, e.g. "kill -9 during index, after 40 files". */
  kind: string;
  /** What it answered or how it recovered, e.g. "400 invalid_argument" or "rebuilt graph". */
  outcome: string;
  /** Stored items lost (images, rows, jobs); 0 when nothing was lost. */
  lost: number;
}

export interface FaultReport {
  add(row: FaultRow): void;
  readonly rows: readonly FaultRow[];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function formatTable(title: string, rows: readonly FaultRow[]): string {
  const wk = Math.max(4, ...rows.map((r) => r.kind.length));
  const wo = Math.max(7, ...rows.map((r) => r.outcome.length));
  const lines = [`# fault summary: ${title} (${rows.length} kinds, ${rows.reduce((s, r) => s + r.lost, 0)} lost)`];
  lines.push(`# ${pad('kind', wk)} | ${pad('outcome', wo)} | lost`);
  for (const r of rows) lines.push(`# ${pad(r.kind, wk)} | ${pad(r.outcome, wo)} | ${r.lost}`);
  return lines.join('\n');
}

/** A report for one test file; its table is printed after the file's tests. */
export function faultReport(title: string): FaultReport {
  const rows: FaultRow[] = [];
  after(() => {
    process.stdout.write(formatTable(title, rows) + '\n');
  });
  return { add: (row) => void rows.push(row), rows };
}
