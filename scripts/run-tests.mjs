#!/usr/bin/env node
// Runs tests/**/*.test.ts with node's own test runner, TypeScript loaded through tsx, in three tiers,
// in this order, each with its own counts:
//   system       needs something outside node_modules, or breaks whole processes on purpose: every file
//                under tests/system/, tests/browser/ or tests/faults/, and every file that names the
//                Debian package it needs (`Debian package: NAME` in its skip reason; without that
//                program its cases skip and say so, with the package that would run them).
//   integration  starts a process or a server: the file imports node:child_process, supertest or
//                node:http, or calls startServer / startTestServer / createServer.
//   unit         everything else: in-process, real files allowed.
// A file's tier is decided by those rules alone (no list to keep up to date).
// Usage: `node scripts/run-tests.mjs [--tier unit|integration|system] [--list] [substring...]`; substrings
// filter the files (`npm test -- index`); --list prints each file's tier and runs nothing. Node 20's `--test` takes no globs, so the files are listed here.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

export const TIERS = ['unit', 'integration', 'system'];
const SYSTEM_DIRS = ['tests/system/', 'tests/browser/', 'tests/faults/'];
const NEEDS_PACKAGE = /Debian package: /;
const STARTS_SOMETHING = /from ['"](node:child_process|supertest|node:http)['"]|\b(startServer|startTestServer|createServer)\(/;

export function tierOf(file, source) {
  if (SYSTEM_DIRS.some((d) => file.startsWith(d)) || NEEDS_PACKAGE.test(source)) return 'system';
  if (STARTS_SOMETHING.test(source)) return 'integration';
  return 'unit';
}

const root = new URL('..', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' ? [] : walk(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Counts and skipped cases from a TAP report (the last summary block is the run's). */
function summarize(tap) {
  const count = (key) => Number([...tap.matchAll(new RegExp(`^# ${key} (\\d+)$`, 'gm'))].at(-1)?.[1] ?? 0);
  const skipped = [...tap.matchAll(/^\s*ok \d+ - (.*) # SKIP(?: (.*))?$/gm)].map((m) => `${m[1]}: ${m[2] ?? 'skipped'}`);
  return { tests: count('tests'), pass: count('pass'), fail: count('fail'), cancelled: count('cancelled'), skipped: count('skipped'), skippedCases: skipped };
}

function runTier(tier, files) {
  process.stdout.write(`\n=== ${tier}: ${files.length} file${files.length === 1 ? '' : 's'} ===\n`);
  const dir = mkdtempSync(join(tmpdir(), 'sightline-tap-'));
  const tapFile = join(dir, `${tier}.tap`);
  try {
    // Same console output as before (spec on a terminal, TAP otherwise), plus a TAP copy for the counts.
    const reporter = process.stdout.isTTY ? 'spec' : 'tap';
    const args = ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...files];
    const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
    let tap = '';
    try {
      tap = readFileSync(tapFile, 'utf8');
    } catch {
      // The runner died before writing: the exit status below says it failed.
    }
    return { tier, files: files.length, status: res.status ?? 1, ...summarize(tap) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(argv) {
  const tierArg = argv.indexOf('--tier');
  const only = tierArg >= 0 ? argv[tierArg + 1] : undefined;
  if (tierArg >= 0 && !TIERS.includes(only ?? '')) {
    console.error(`--tier must be one of ${TIERS.join(', ')}, got '${only ?? ''}'`);
    return 2;
  }
  const filters = argv.filter((a, i) => a !== '--list' && (tierArg < 0 || (i !== tierArg && i !== tierArg + 1)));
  const files = walk(join(root, 'tests'))
    .map((f) => relative(root, f))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort()
    .map((f) => ({ file: f, tier: tierOf(f, readFileSync(join(root, f), 'utf8')) }))
    .filter((f) => only === undefined || f.tier === only);
  if (files.length === 0) {
    console.error('no test files matched');
    return 1;
  }
  if (argv.includes('--list')) {
    for (const tier of TIERS) for (const f of files.filter((x) => x.tier === tier)) process.stdout.write(`${tier.padEnd(12)} ${f.file}\n`);
    return 0;
  }
  const results = TIERS.map((tier) => [tier, files.filter((f) => f.tier === tier).map((f) => f.file)])
    .filter(([, list]) => list.length > 0)
    .map(([tier, list]) => runTier(tier, list));
  process.stdout.write('\n=== summary ===\n');
  for (const r of results) {
    const status = r.status === 0 ? 'ok' : `FAILED (exit ${r.status})`;
    process.stdout.write(`${r.tier.padEnd(12)} ${String(r.files).padStart(3)} files  ${String(r.tests).padStart(4)} tests  ${String(r.pass).padStart(4)} pass  ${String(r.fail).padStart(3)} fail  ${String(r.skipped).padStart(3)} skipped  ${status}\n`);
    for (const s of r.skippedCases) process.stdout.write(`  skipped: ${s}\n`);
  }
  return results.every((r) => r.status === 0) ? 0 : 1;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) process.exitCode = main(process.argv.slice(2));
