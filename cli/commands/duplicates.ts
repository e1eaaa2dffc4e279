/** `sightline duplicates`: near-duplicate groups (close full embeddings) and recorded exact copies, read-only. */
import type { Command } from 'commander';
import { backendDuplicates, DEFAULT_NEAR_DUP_RELATIVE, findDuplicatesIn, openBackend, type DbLocation, type DuplicateOptions, type DuplicatesReport } from '../../index/index.js';
import { DB_FLAG_HELP, dbLocation } from '../db.js';
import { CliError } from '../errors.js';
import { asCliError } from './serve.js';

interface DuplicatesFlags {
  db?: string;
  json?: boolean;
  maxRelativeDistance?: string;
  maxDistance?: string;
  neighbours: string;
}

function num(flag: string, v: string | undefined, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw CliError.usage(`'${flag}' must be ${integer ? 'an integer' : 'a number'} ≥ 0, got '${v}'`);
  }
  return n;
}

export function register(program: Command): void {
  program
    .command('duplicates')
    .description('list groups of near-duplicate images (embeddings within a distance calibrated on edited copies) and exact copies skipped at index time')
    .option('--db <dir|url>', DB_FLAG_HELP)
    .option('--json', 'one JSON object: { groups: [{ ids, members: [{ id, source }], pairs: [{ a, b, hamming, distance }] }], exact: [{ id, source, copies }] }')
    .option('--max-relative-distance <x>', `max embedding distance / mean embedding norm of the pair (default ${DEFAULT_NEAR_DUP_RELATIVE}, calibrated on edited copies)`)
    .option('--max-distance <x>', 'absolute Euclidean threshold instead of the relative one')
    .option('--neighbours <n>', 'nearest images examined per image', '10')
    .action(async (flags: DuplicatesFlags) => {
      const report = await duplicatesAt(dbLocation(flags.db), {
        maxRelativeDistance: num('--max-relative-distance', flags.maxRelativeDistance, false),
        maxDistance: num('--max-distance', flags.maxDistance, false),
        neighbours: num('--neighbours', flags.neighbours, true),
      });
      const { groups, exact } = report;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ groups: groups.map(({ ids, members, pairs }) => ({ ids, members, pairs })), exact })}\n`);
        return;
      }
      const images = groups.reduce((n, g) => n + g.ids.length, 0);
      const rule = flags.maxDistance !== undefined ? `distance ≤ ${flags.maxDistance}` : `distance ≤ ${flags.maxRelativeDistance ?? DEFAULT_NEAR_DUP_RELATIVE} × mean norm`;
      process.stdout.write(`${groups.length} group${groups.length === 1 ? '' : 's'} of near-duplicates (${images} images; ${rule})\n`);
      for (const [i, g] of groups.entries()) {
        const worst = Math.max(...g.pairs.map((p) => p.distance));
        process.stdout.write(`\n#${i + 1}  ${g.ids.length} images, max embedding distance ${worst.toFixed(3)}\n`);
        for (const m of g.members) process.stdout.write(`  ${String(m.id).padStart(8)}  ${m.source}\n`);
      }
      if (exact.length > 0) {
        process.stdout.write(`\n${exact.length} indexed image${exact.length === 1 ? '' : 's'} with exact copies (same SHA-256, not indexed again)\n`);
        for (const e of exact) {
          process.stdout.write(`  ${String(e.id).padStart(8)}  ${e.source}\n`);
          for (const c of e.copies) process.stdout.write(`            = ${c}\n`);
        }
      }
    });
}

/** SQLite: read-only beside a running server, exact scan; PostgreSQL: searches in the database. */
async function duplicatesAt(location: DbLocation, options: DuplicateOptions): Promise<DuplicatesReport> {
  if (location.kind === 'sqlite') return findDuplicatesIn(location.dir, options);
  const cat = await openBackend(location, { readOnly: true, create: false }).catch((err: unknown) => {
    throw asCliError(err);
  });
  try {
    return await backendDuplicates(cat, options);
  } finally {
    await cat.close();
  }
}
