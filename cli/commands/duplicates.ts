/** `sightline duplicates`: near-duplicate groups (close codes AND close embeddings), read-only. */
import type { Command } from 'commander';
import { defaultRadius, findDuplicatesIn, inspectIndex } from '../../index/index.js';
import { CliError } from '../errors.js';

interface DuplicatesFlags {
  db: string;
  json?: boolean;
  radius?: string;
  maxRelativeDistance: string;
  maxDistance?: string;
}

function num(flag: string, v: string | undefined, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new CliError(`'${flag}' must be ${integer ? 'an integer' : 'a number'} ≥ 0, got '${v}'`);
  }
  return n;
}

export function register(program: Command): void {
  program
    .command('duplicates')
    .description('list groups of near-duplicate images: codes within a Hamming radius and embeddings within a distance')
    .option('--db <dir>', 'index directory', './data')
    .option('--json', 'one JSON object: { groups: [{ ids, members: [{ id, source }], pairs: [{ a, b, hamming, distance }] }] }')
    .option('--radius <bits>', 'max Hamming distance (default 3 bits per 128)')
    .option('--max-relative-distance <x>', 'max embedding distance / mean embedding norm', '0.1')
    .option('--max-distance <x>', 'absolute Euclidean threshold instead of the relative one')
    .action((flags: DuplicatesFlags) => {
      const radius = num('--radius', flags.radius, true);
      const groups = findDuplicatesIn(flags.db, {
        radius,
        maxRelativeDistance: num('--max-relative-distance', flags.maxRelativeDistance, false),
        maxDistance: num('--max-distance', flags.maxDistance, false),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ groups: groups.map(({ ids, members, pairs }) => ({ ids, members, pairs })) })}\n`);
        return;
      }
      const bits = inspectIndex(flags.db).bits;
      const images = groups.reduce((n, g) => n + g.ids.length, 0);
      process.stdout.write(`${groups.length} group${groups.length === 1 ? '' : 's'} of near-duplicates (${images} images; radius ${radius ?? defaultRadius(bits)} of ${bits} bits)\n`);
      for (const [i, g] of groups.entries()) {
        const worst = Math.max(...g.pairs.map((p) => p.distance));
        process.stdout.write(`\n#${i + 1}  ${g.ids.length} images, max embedding distance ${worst.toFixed(3)}\n`);
        for (const m of g.members) process.stdout.write(`  ${String(m.id).padStart(8)}  ${m.source}\n`);
      }
    });
}
