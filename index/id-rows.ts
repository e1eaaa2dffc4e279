/**
 * Image id → matrix row, for the code matrix (scan.ts). Ids below DENSE_IDS live in a typed array
 * (row + 1 by id, 0 = absent), grown by doubling up to the largest id seen; larger or unusual ids
 * fall back to a Map.
 *
 * Why not just the Map: image ids are SQLite's AUTOINCREMENT, so dense, and the HNSW pool turns
 * thousands of ids into rows per query (every image of the nearest codes). Map lookups cost about
 * 1 µs each there (profiled: at 150k images the HNSW pool took 6.6 ms p50, 1.0 ms with this
 * table), against a few ns for a typed-array read. Cost: 4 bytes per id up to the largest
 * (4 MB at 1M images).
 */

/** Ids below this use the typed array (at most 256 MB, reached only by an id that large). */
const DENSE_IDS = 2 ** 26;

export class IdRows {
  private dense = new Int32Array(0);
  private readonly sparse = new Map<number, number>();

  /** The row of `id`, or undefined when it has none. */
  get(id: number): number | undefined {
    if (id >= 0 && id < this.dense.length) {
      const r = (this.dense[id] as number) - 1;
      return r < 0 ? undefined : r;
    }
    return id < DENSE_IDS && Number.isInteger(id) && id >= 0 ? undefined : this.sparse.get(id);
  }

  set(id: number, row: number): void {
    if (!isDense(id)) {
      this.sparse.set(id, row);
      return;
    }
    if (id >= this.dense.length) {
      const grown = new Int32Array(Math.min(DENSE_IDS, Math.max(1024, 2 * this.dense.length, id + 1)));
      grown.set(this.dense);
      this.dense = grown;
    }
    this.dense[id] = row + 1;
  }

  delete(id: number): void {
    if (!isDense(id)) this.sparse.delete(id);
    else if (id < this.dense.length) this.dense[id] = 0;
  }
}

function isDense(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < DENSE_IDS;
}
