/** Progress bars for long work, drawn on stderr so that stdout stays machine-readable. */
import cliProgress from 'cli-progress';

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export function makeBar(format: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    { format, stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 50, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 10_000 },
    cliProgress.Presets.shades_classic,
  );
}
