/**
 * `sightline migrate --from SRC --to DST`: copies a catalog from a SQLite folder into PostgreSQL, or
 * back, or between two of either (index/transfer.ts). The source is opened read-only (safe beside a
 * running server); the destination is created with the source's model, code model and bits, or
 * must already have them. Resumable: an interrupted run is simply run again (images the
 * destination holds are skipped by SHA-256). Counts are checked at the end; the report is one line
 * on stdout (`--json`: one object).
 */
import type { Command } from 'commander';
import { IndexLocationError, IndexMissingError, openBackend, parseDbLocation, transferCatalog, type CatalogBackend, type DbLocation } from '../../index/index.js';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { makeBar } from '../progress.js';
import { asCliError } from './serve.js';

interface MigrateFlags {
  from?: string;
  to?: string;
  batch: string;
  json?: boolean;
}

const WHERE = 'a SQLite index folder or postgres://USER:PASSWORD@HOST:PORT/DATABASE';

function location(flag: '--from' | '--to', value: string | undefined): DbLocation {
  if (value === undefined) throw CliError.usage(`${flag} is required: ${WHERE}`);
  try {
    return parseDbLocation(value, flag);
  } catch (err) {
    if (err instanceof IndexLocationError) throw CliError.usage(err.message);
    throw err;
  }
}

const same = (a: DbLocation, b: DbLocation): boolean => (a.kind === 'sqlite' && b.kind === 'sqlite' ? a.dir === b.dir : a.kind === 'postgres' && b.kind === 'postgres' && a.url === b.url);
const shown = (l: DbLocation): string => (l.kind === 'sqlite' ? l.dir : l.display);

async function open(l: DbLocation, src?: CatalogBackend): Promise<CatalogBackend> {
  try {
    // The source must exist; the destination is made with the source's meta (or checked against it).
    return await openBackend(l, src ? { ...src.meta, create: true } : { readOnly: true, create: false });
  } catch (err) {
    if (!src && err instanceof IndexMissingError) throw CliError.failure(`--from '${shown(l)}' holds no Sightline catalog`);
    throw asCliError(err);
  }
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description(`copy a catalog between SQLite and PostgreSQL (either way): --from and --to each ${WHERE}. Resumable (images already in the destination are skipped by SHA-256); counts checked at the end. Uploaded files stay where they are: copy SRC/uploads to the new SIGHTLINE_BLOB_DIR at the same path, or keep it mounted`)
    .option('--from <dir|url>', 'the catalog to copy (opened read-only)')
    .option('--to <dir|url>', 'where to copy it (created when empty)')
    .option('--batch <n>', 'images per destination transaction, 1-1000', '200')
    .option('--json', 'the report as one JSON object: { total, copied, present, copies, destination }')
    .action(async (flags: MigrateFlags) => {
      const from = location('--from', flags.from);
      const to = location('--to', flags.to);
      const batch = intFlag('--batch', flags.batch, 1, 1000);
      if (same(from, to)) throw CliError.usage(`--from and --to name the same catalog (${shown(from)})`);
      const src = await open(from);
      let dst: CatalogBackend | undefined;
      const bar = makeBar('migrating |{bar}| {value}/{total} images | ETA {eta_formatted}');
      let started = false;
      try {
        dst = await open(to, src);
        const report = await transferCatalog(src, dst, {
          batch,
          onProgress: (done, total) => {
            if (!started) bar.start(total, 0);
            started = true;
            bar.update(done);
          },
        });
        if (started) bar.stop();
        started = false;
        if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else process.stdout.write(`migrated ${shown(from)} → ${shown(to)}: ${report.total} images, ${report.copied} copied, ${report.present} already there, ${report.copies} other paths; the destination holds ${report.destination}\n`);
      } catch (err) {
        throw asCliError(err);
      } finally {
        if (started) bar.stop();
        await dst?.close();
        await src.close();
      }
    });
}
