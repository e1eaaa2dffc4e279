/**
 * Near-duplicate groups over the collection for GET /v1/duplicates: the same groups as
 * `sightline duplicates` (index/duplicates.ts: every image's nearest neighbours by the exact
 * re-rank, pairs within the calibrated distance, joined into groups), paged by the smallest id of
 * each group.
 *
 * Work is bounded: finding the groups costs one search per image (4.4 s for 300 synthetic 4096-d
 * images on this loaded machine, 56 s for 3,000), so it runs in ~10 ms slices between turns of the
 * event loop (other requests go on), one pass at a time, and its result is kept for the catalog's
 * generation and options: the pages of one listing, and every client asking the same, share one
 * pass; any add or delete makes the next request start a new one. Only the latest result is kept.
 */
import type { CatalogBackend, DuplicateGroup } from '../../index/index.js';
import type { DuplicateGroupView, DuplicatePage, DuplicatesOptions } from '../ports.js';

export class DuplicateGroups {
  /** The latest finished pass. */
  private done: { key: string; groups: DuplicateGroup[] } | undefined;
  /** The pass under way; there is never more than one. */
  private running: { key: string; groups: Promise<DuplicateGroup[]> } | undefined;

  constructor(
    private readonly catalog: CatalogBackend,
    private readonly thumbnailUrl: (id: number) => string,
  ) {}

  async page(o: DuplicatesOptions): Promise<DuplicatePage> {
    const groups = await this.groups(o);
    const from = o.afterId === undefined ? 0 : firstAfter(groups, o.afterId);
    const page = groups.slice(from, from + o.limit);
    const more = from + o.limit < groups.length;
    return { groups: await Promise.all(page.map((g) => this.view(g))), total: groups.length, lastId: more ? ((page.at(-1)?.ids[0] as number | undefined) ?? null) : null };
  }

  /**
   * All groups for the current generation and options, by their smallest id. One pass at a time:
   * a request for other options (or after a change) waits for the pass under way to end before it
   * starts its own, so clients polling during an indexing job (every add is a new generation) or
   * asking with many options queue up instead of running passes side by side.
   */
  private async groups(o: DuplicatesOptions): Promise<DuplicateGroup[]> {
    for (;;) {
      const key = JSON.stringify([await this.catalog.generation(), o.maxRelativeDistance ?? null, o.maxDistance ?? null, o.neighbours]);
      if (this.done?.key === key) return this.done.groups;
      const run = this.running ?? this.start(key, o);
      if (run.key === key) return run.groups;
      await run.groups.catch(() => undefined);
    }
  }

  private start(key: string, o: DuplicatesOptions): { key: string; groups: Promise<DuplicateGroup[]> } {
    const groups = this.catalog
      .duplicates({ neighbours: o.neighbours, ...(o.maxDistance === undefined ? {} : { maxDistance: o.maxDistance }), ...(o.maxRelativeDistance === undefined ? {} : { maxRelativeDistance: o.maxRelativeDistance }) })
      .then((gs) => gs.sort((a, b) => (a.ids[0] as number) - (b.ids[0] as number)));
    const run = { key, groups };
    this.running = run;
    // A failed pass is not kept: the next request tries again.
    groups
      .then((g) => {
        this.done = { key, groups: g };
      }, () => undefined)
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    return run;
  }

  private async view(g: DuplicateGroup): Promise<DuplicateGroupView> {
    // An image deleted after the pass is left out of its group until the next pass.
    const rows = await Promise.all(g.ids.map((id) => this.catalog.get(id)));
    return {
      ids: g.ids,
      members: rows.flatMap((r) => (r ? [{ id: r.id, source: r.source, thumbnail_url: this.thumbnailUrl(r.id) }] : [])),
      pairs: g.pairs.map((p) => ({ a: p.a, b: p.b, hamming: p.hamming, distance: p.distance })),
    };
  }
}

/** Index of the first group whose smallest id is above `id` (groups sorted by it). */
function firstAfter(groups: readonly DuplicateGroup[], id: number): number {
  let lo = 0;
  let hi = groups.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((groups[mid]?.ids[0] as number) <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
