/**
 * Counters of an indexing run (CLI progress bar and job reports alike), including the resume
 * watermark: the first position not yet finished, below which every outcome is final. A restart
 * continues from the watermark with the counters as they stood there, so nothing is counted twice.
 */
import type { Outcome } from './indexing.js';

export const MAX_ERRORS = 20;

export interface Counters {
  done: number;
  skipped: number;
  failed: number;
  /** Skipped because the bytes were already indexed. */
  duplicates: number;
  /** Skipped because the file is not an image. */
  not_images: number;
}

export interface Checkpoint {
  position: number;
  counters: Counters;
  errors: { file: string; message: string }[];
}

const zero = (): Counters => ({ done: 0, skipped: 0, failed: 0, duplicates: 0, not_images: 0 });

function apply(c: Counters, o: Outcome, resumed: boolean): void {
  if (o.kind === 'added') c.done++;
  // A resumed run meets the files it indexed just before the interruption: they are its own work.
  else if (o.kind === 'duplicate' && resumed && o.sameSource) c.done++;
  else if (o.kind === 'duplicate') {
    c.skipped++;
    c.duplicates++;
  } else if (o.kind === 'not_image') {
    c.skipped++;
    c.not_images++;
  } else c.failed++;
}

export class Progress {
  readonly counters: Counters;
  readonly errors: { file: string; message: string }[];
  private readonly committed: Counters;
  private watermark: number;
  private readonly finished = new Map<number, Outcome>();
  private processedThisRun = 0;
  private readonly startedAt = performance.now();
  /** Continues an interrupted run (decided once, at construction). */
  readonly resumed: boolean;

  constructor(
    public total: number,
    from?: Checkpoint,
  ) {
    this.counters = { ...zero(), ...from?.counters };
    this.committed = { ...zero(), ...from?.counters };
    this.errors = [...(from?.errors ?? [])];
    this.watermark = from?.position ?? 0;
    this.resumed = from !== undefined;
  }


  get processed(): number {
    return this.counters.done + this.counters.skipped + this.counters.failed;
  }

  record(position: number, file: string, outcome: Outcome, resumed = this.resumed): void {
    apply(this.counters, outcome, resumed);
    this.processedThisRun++;
    if (outcome.kind === 'failed' && this.errors.length < MAX_ERRORS && !this.errors.some((e) => e.file === file)) this.errors.push({ file, message: outcome.message });
    this.finished.set(position, outcome);
    while (this.finished.has(this.watermark)) {
      apply(this.committed, this.finished.get(this.watermark) as Outcome, resumed);
      this.finished.delete(this.watermark);
      this.watermark++;
    }
  }

  /** Files per second in this run (a resumed run does not count the earlier one's time). */
  rate(): number {
    const s = (performance.now() - this.startedAt) / 1000;
    return s > 0 ? this.processedThisRun / s : 0;
  }

  etaSeconds(): number | null {
    const r = this.rate();
    if (r <= 0) return null;
    return Math.max(0, (this.total - this.processed) / r);
  }

  checkpoint(): Checkpoint {
    return { position: this.watermark, counters: { ...this.committed }, errors: [...this.errors] };
  }
}
