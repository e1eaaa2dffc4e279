/**
 * `sightline index DIR`: indexes a photo folder into the local database with the same indexing
 * service as the server's jobs. Already indexed bytes are skipped by SHA-256, so an interrupted run
 * (Ctrl-C or kill -9) resumes by running the same command again; broken files are reported, never fatal.
 */
import { realpath, stat } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { Progress, walkFiles } from '../../server/index.js';
import type { Outcome } from '../../server/index.js';
import { CliError } from '../errors.js';
import { intFlag } from '../flags.js';
import { pullIfAsked } from './models.js';
import { addRuntimeFlags, configFromFlags, openRuntime, terminalLogger } from './serve.js';
import type { RuntimeFlags } from './serve.js';

interface IndexFlags extends RuntimeFlags {
  recursive?: boolean;
  concurrency: string;
  verbose?: boolean;
}

async function folder(dir: string): Promise<string> {
  const real = await realpath(dir).catch(() => {
    throw CliError.failure(`folder '${dir}' does not exist`);
  });
  if (!(await stat(real)).isDirectory()) throw CliError.usage(`'${dir}' is not a folder`);
  return real;
}

function describe(o: Outcome): string {
  if (o.kind === 'added') return `indexed as #${o.id}`;
  if (o.kind === 'duplicate') return `already indexed as #${o.id}`;
  if (o.kind === 'not_image') return `not an image (${o.reason})`;
  return o.message;
}

function summary(p: Progress, seconds: number, images: number, interrupted: boolean): string {
  const c = p.counters;
  const lines = [
    `${interrupted ? 'interrupted: ' : ''}indexed ${c.done} new image${c.done === 1 ? '' : 's'} of ${p.total} file${p.total === 1 ? '' : 's'} in ${seconds.toFixed(1)} s (${p.rate().toFixed(1)} files/s)`,
    `skipped ${c.skipped} (${c.duplicates} already indexed, ${c.not_images} not images), failed ${c.failed}`,
    `the index holds ${images} image${images === 1 ? '' : 's'}`,
  ];
  if (interrupted) lines.push('run the same command again to resume (indexed files are skipped)');
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  addRuntimeFlags(
    program
      .command('index')
      .description('index the images of a folder into the local database (skips non-images and files already indexed; resumable)')
      .argument('<dir>', 'folder of photos')
      .option('--recursive', 'walk sub-folders too (the default; kept for scripts written when it was not)')
      .option('--no-recursive', 'only the top level of the folder (default: its sub-folders too, like the server\'s jobs)')
      .option('--concurrency <n>', 'images in flight at once (decoding overlaps inference)', '8')
      .option('--verbose', 'list skipped and failed files'),
  ).action(async (dir: string, flags: IndexFlags) => {
    const concurrency = intFlag('--concurrency', flags.concurrency, 1, 64);
    const root = await folder(dir);
    await pullIfAsked(flags);
    const config = configFromFlags(flags, { demo: false, jobConcurrency: concurrency });
    const entries = await walkFiles(root, { recursive: flags.recursive !== false });
    const rt = await openRuntime(config, terminalLogger(flags.verbose === true));
    const progress = new Progress(entries.length);
    const abort = new AbortController();
    const onSignal = (): void => {
      if (abort.signal.aborted) process.exit(130);
      process.stderr.write('\nsightline: stopping after the files in flight (Ctrl-C again to quit now)\n');
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const bar = new cliProgress.SingleBar(
      {
        format: 'indexing |{bar}| {value}/{total} files | {rate} files/s | ETA {eta_s} | skipped {skipped} | failed {failed}',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = () => ({ rate: progress.rate().toFixed(1), eta_s: `${Math.round(progress.etaSeconds() ?? 0)}s`, skipped: progress.counters.skipped, failed: progress.counters.failed });
    const interactive = process.stderr.isTTY === true;
    if (interactive) bar.start(entries.length, 0, payload());
    const t0 = performance.now();
    try {
      await rt.indexing.run(entries, {
        concurrency,
        signal: abort.signal,
        priority: 'interactive',
        onOutcome: (position, entry, outcome) => {
          progress.record(position, entry.path, outcome);
          if (interactive) bar.update(progress.processed, payload());
          const report = outcome.kind === 'failed' || (flags.verbose === true && outcome.kind !== 'added');
          if (report) {
            if (interactive) bar.stop();
            process.stderr.write(`${outcome.kind === 'failed' ? 'failed' : 'skipped'}: ${entry.path}: ${describe(outcome)}\n`);
            if (interactive) bar.start(entries.length, progress.processed, payload());
          }
        },
      });
    } finally {
      if (interactive) bar.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const images = await rt.gallery.size();
      await rt.close();
      process.stdout.write(summary(progress, (performance.now() - t0) / 1000, images, abort.signal.aborted));
    }
    if (abort.signal.aborted) process.exitCode = 130;
  });
}
