/**
 * The CLI contract (README "Command line", `sightline --help`): exit code 0 ok, 1 runtime failure,
 * 2 usage error, with a one-line `sightline: …` message and no stack. Every command gets one usage
 * error and one runtime failure, both chosen to fail before a model loads so the table stays fast.
 * Runs the built CLI (`node bin/sightline.js`, as an installed package would), not tsx.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../cli/commands/index.js';
import { FIXTURES, tempDir, testModelPath } from '../server/helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'sightline.js');
const tmp = tempDir('sightline-exit-');
after(() => tmp.cleanup());
const EMPTY = join(tmp.path, 'empty');
mkdirSync(EMPTY);
const HOME = join(tmp.path, 'home');
mkdirSync(HOME);
const MISSING = join(tmp.path, 'missing.png');
const IMAGES = join(tmp.path, 'images');
mkdirSync(join(IMAGES, 'sub'), { recursive: true });
copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(IMAGES, 'dog.jpg'));
copyFileSync(join(FIXTURES, 'images', 'dog.jpg'), join(IMAGES, 'sub', 'dog2.jpg'));
writeFileSync(join(IMAGES, 'notes.txt'), 'not an image');
const LABELS = join(tmp.path, 'labels.txt');
writeFileSync(LABELS, 'cat\ndog\n');

function cli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp.path,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SIGHTLINE_HOME: HOME, SIGHTLINE_DEBUG: '', SIGHTLINE_MODEL_MIRROR: 'http://127.0.0.1:9/' },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

function assertOneLine(stderr: string, what: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: expected a one-line message, got:\n${stderr}`);
  assert.match(lines[0] ?? '', /^sightline: \S/, what);
  assert.doesNotMatch(stderr, /\n\s+at |Error:.*\n/, `${what}: a stack trace`);
}

interface Case {
  usage: string[];
  failure: string[];
  /** What the usage message must name (the flag or argument as typed). */
  names?: string;
}

const CASES: Record<string, Case> = {
  classify: { usage: ['classify', MISSING, '--topk', '0'], names: '--topk', failure: ['classify', MISSING] },
  embed: { usage: ['embed', MISSING, '--crops', '3'], names: '--crops', failure: ['embed', MISSING] },
  export: { usage: ['export', '--preset', 'nope'], names: 'nope', failure: ['export', '--labels', MISSING, '--out', join(tmp.path, 'x.onnx')] },
  quantize: { usage: ['quantize', MISSING, '--calibration', EMPTY, '--method', 'nope', '--out', 'q.onnx'], names: '--method', failure: ['quantize', MISSING, '--calibration', EMPTY, '--out', 'q.onnx'] },
  import: { usage: ['import', MISSING, '--preset', 'nope', '--out', 'i.onnx'], names: 'nope', failure: ['import', MISSING, '--preset', 'torchvision', '--labels', LABELS, '--out', 'i.onnx'] },
  stats: { usage: ['stats', '--bogus'], names: '--bogus', failure: ['stats', '--db', EMPTY] },
  duplicates: { usage: ['duplicates', '--neighbours', 'x', '--db', EMPTY], names: '--neighbours', failure: ['duplicates', '--db', EMPTY] },
  reindex: { usage: ['reindex', '--m', '1', '--db', EMPTY], names: '--m', failure: ['reindex', '--db', EMPTY] },
  train: { usage: ['train', '--init', 'nope', '--out', 'm.onnx'], names: '--init', failure: ['train', '--resume', EMPTY, '--epochs', '1'] },
  migrate: { usage: ['migrate', '--from', EMPTY, '--to', 'mysql://h/db'], names: '--to', failure: ['migrate', '--from', join(tmp.path, 'no-such-index'), '--to', join(tmp.path, 'copy')] },
  serve: { usage: ['serve', '--port', '99999', '--db', EMPTY], names: '--port', failure: ['serve', '--model', MISSING, '--port', '0', '--db', EMPTY] },
  index: { usage: ['index', EMPTY, '--concurrency', '0'], names: '--concurrency', failure: ['index', join(tmp.path, 'no-such-folder')] },
  search: { usage: ['search', MISSING, '--k', '0'], names: '--k', failure: ['search', MISSING, '--db', EMPTY] },
  'train-codes': { usage: ['train-codes', '--bits', '3', '--out', 'c.onnx'], names: '--bits', failure: ['train-codes', '--model', MISSING, '--out', 'c.onnx'] },
  eval: { usage: ['eval', '--bogus'], names: '--bogus', failure: ['eval', 'classify', '--model', testModelPath(), '--dataset', join(tmp.path, 'no-such-dataset')] },
  models: { usage: ['models', 'path', 'no-such-model'], names: 'no-such-model', failure: ['models', 'path', 'alexnet-imagenet'] },
  calibrate: { usage: ['calibrate', '--model', MISSING, '--dataset', 'nope'], names: 'nope', failure: ['calibrate', '--model', testModelPath(), '--dir', join(tmp.path, 'no-such-folder')] },
};

test('the table covers every command', () => {
  assert.deepEqual(Object.keys(CASES).sort(), COMMANDS.map((c) => c.name).sort());
});

for (const [name, c] of Object.entries(CASES)) {
  test(`${name}: a wrong command line exits 2, a failed run exits 1, each with one line and no stack`, () => {
    const usage = cli(c.usage);
    assert.equal(usage.status, 2, `sightline ${c.usage.join(' ')}\n${usage.stderr}`);
    assertOneLine(usage.stderr, `usage error of ${name}`);
    if (c.names) assert.ok(usage.stderr.includes(c.names), `the message names '${c.names}': ${usage.stderr}`);
    const failure = cli(c.failure);
    assert.equal(failure.status, 1, `sightline ${c.failure.join(' ')}\n${failure.stderr}`);
    assertOneLine(failure.stderr, `runtime failure of ${name}`);
  });
}

test('unknown commands and options, missing arguments exit 2; --help and --version exit 0 and document the codes', () => {
  for (const args of [['nope'], ['--bogus'], ['classify'], ['stats', '--bogus']]) {
    const r = cli(args);
    assert.equal(r.status, 2, args.join(' '));
    assertOneLine(r.stderr, args.join(' '));
  }
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Exit codes:\n\s+0\s+success\n\s+1\s+.*\n(.*\n)*\s+2\s+usage error/);
  assert.equal(cli(['--version']).status, 0);
});

test('--db takes a postgres:// URL and never makes it a folder: a bad URL exits 2, an unreachable database 1, the password never printed', () => {
  for (const cmd of ['serve', 'index', 'search', 'stats', 'duplicates', 'reindex']) {
    const extra = cmd === 'index' ? [IMAGES] : cmd === 'search' ? [join(IMAGES, 'dog.jpg')] : [];
    for (const [db, re] of [['postgres://', /--db 'postgres:\/\/' names no host/], ['mysql://u:pw@h/db', /--db 'mysql:\/\/u:\*\*\*@h\/db': unsupported scheme 'mysql'/]] as const) {
      const r = cli([cmd, ...extra, '--db', db, ...(cmd === 'serve' ? ['--port', '0'] : [])]);
      assert.equal(r.status, 2, `${cmd} --db ${db}: ${r.stderr}`);
      assert.match(r.stderr, re, cmd);
      assert.doesNotMatch(r.stderr, /pw@/);
    }
  }
  const down = cli(['stats', '--db', 'postgres://u:pw@127.0.0.1:1/x']);
  assert.equal(down.status, 1);
  assert.match(down.stderr, /database 'postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/x' is unreachable/);
  assert.ok(!existsSync(join(tmp.path, 'postgres:')) && !existsSync(join(tmp.path, 'mysql:')), 'no folder named after a URL');
});

test('serve --port names the flag when the flag was used, the variable when the environment set it', () => {
  const r = cli(['serve', '--port', '99999', '--db', EMPTY]);
  assert.match(r.stderr, /--port/);
  assert.doesNotMatch(r.stderr, /SIGHTLINE_PORT/);
});

test('a quoted glob gets a hint; a folder stands for its image files', () => {
  const glob = cli(['classify', join(IMAGES, '*.jpg')]);
  assert.equal(glob.status, 2);
  assert.match(glob.stderr, /let the shell expand it.*or pass the folder/);
  const noImages = cli(['classify', EMPTY]);
  assert.equal(noImages.status, 1);
  assert.match(noImages.stderr, /holds no image files/);
  const model = testModelPath();
  const flat = cli(['classify', IMAGES, '--model', model, '--crops', '1', '--json']);
  assert.equal(flat.status, 0, flat.stderr);
  assert.deepEqual(flat.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { file: string }).file), [join(IMAGES, 'dog.jpg')]);
  const deep = cli(['embed', IMAGES, '--recursive', '--model', model, '--crops', '1', '--json']);
  assert.equal(deep.status, 0, deep.stderr);
  assert.deepEqual(deep.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { file: string }).file), [join(IMAGES, 'dog.jpg'), join(IMAGES, 'sub', 'dog2.jpg')]);
});

test('a reader that closes stdout early ends the CLI quietly (no EPIPE stack)', async () => {
  const child = spawn(process.execPath, [BIN, 'embed', IMAGES, '--recursive', '--model', testModelPath(), '--crops', '1'], { cwd: tmp.path, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.doesNotMatch(stderr, /EPIPE|\n\s+at /, stderr);
  assert.equal(code, 0, stderr);
});
