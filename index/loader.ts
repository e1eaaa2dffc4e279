/**
 * Loading the in-memory side of the catalog from SQLite: all codes into the scan matrix, top labels
 * interned to small integers (so label filters compare ints), each row's sketch, and the row fingerprint.
 */
import { IndexSchemaError } from './errors.js';
import { Fingerprint } from './fingerprint.js';
import { CodeMatrix, NO_LABEL } from './scan.js';
import type { ImageStore } from './store.js';

/** Top labels as dense integers with live counts (the search uses counts to pick scan vs HNSW). */
export class LabelTable {
  private readonly ids = new Map<string, number>();
  private readonly counts: number[] = [];

  intern(label: string | null): number {
    if (label === null) return NO_LABEL;
    let i = this.ids.get(label);
    if (i === undefined) {
      i = this.counts.length;
      this.ids.set(label, i);
      this.counts.push(0);
    }
    return i;
  }

  indexOf(label: string): number | undefined {
    return this.ids.get(label);
  }

  count(index: number): number {
    return this.counts[index] ?? 0;
  }

  inc(index: number, by: number): void {
    if (index !== NO_LABEL) this.counts[index] = (this.counts[index] ?? 0) + by;
  }
}

export interface LoadedRows {
  matrix: CodeMatrix;
  labels: LabelTable;
  fingerprint: Fingerprint;
}

export function loadRows(store: ImageStore): LoadedRows {
  const { bits, sketchDim } = store.meta();
  const matrix = new CodeMatrix(bits, Math.max(1024, store.count()), sketchDim);
  const labels = new LabelTable();
  const fingerprint = new Fingerprint(bits >>> 5);
  const words = new Uint32Array(bits >>> 5);
  const wordBytes = new Uint8Array(words.buffer);
  for (const [id, code, top, sketch] of store.codes()) {
    if (code.length !== bits / 8) {
      throw new IndexSchemaError(
        `image ${id} has a ${code.length * 8}-bit code but the database says ${bits} bits: an interrupted re-embedding? finish it with \`sightline reindex\``,
      );
    }
    const label = labels.intern(top);
    matrix.set(id, code, label, sketch);
    labels.inc(label, 1);
    wordBytes.set(code);
    fingerprint.add(id, words);
  }
  return { matrix, labels, fingerprint };
}
