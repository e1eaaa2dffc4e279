/**
 * The CLI loads a command's modules only when that command runs (cli/commands/index.ts):
 * `sightline --help` loads commander alone, and `serve` never loads TensorFlow.js (training code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { Command } from 'commander';
import { COMMANDS } from '../../cli/commands/index.js';
import { tempDir, testCodesPath, testModelPath } from '../server/helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PRELOAD = join(import.meta.dirname, 'fixtures', 'loaded-packages.cjs');
const ARGS = ['--require', PRELOAD, '--import', 'tsx', 'cli/main.ts'];

function loadedPackages(stderr: string): string[] {
  const line = stderr.split('\n').find((l) => l.startsWith('LOADED-PACKAGES '));
  assert.ok(line, `no package list on stderr:\n${stderr}`);
  return JSON.parse(line.slice('LOADED-PACKAGES '.length)) as string[];
}

const HEAVY = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node', 'sharp', 'express', 'better-sqlite3', 'hnswlib-node'];

test('the command table names every command module, with the arguments that module declares', async () => {
  const files = readdirSync(join(ROOT, 'cli', 'commands')).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
  assert.equal(COMMANDS.length, files.length, `${COMMANDS.map((c) => c.name).join(' ')} vs ${files.join(' ')}`);
  for (const entry of COMMANDS) {
    const program = new Command();
    (await entry.load()).register(program);
    const cmd = program.commands.find((c) => c.name() === entry.name);
    assert.ok(cmd, `module of '${entry.name}' registers no command of that name`);
    assert.equal(cmd.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`)).join(' '), entry.args, entry.name);
  }
});

test('sightline --help lists every command and loads no package but commander', () => {
  const res = spawnSync(process.execPath, [...ARGS, '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  for (const name of ['classify', 'serve', 'train', 'train-codes', 'eval', 'index', 'search', 'reindex']) assert.match(res.stdout, new RegExp(`\\n  ${name} `));
  const loaded = loadedPackages(res.stderr);
  assert.deepEqual(loaded.filter((p) => HEAVY.includes(p)), []);
  assert.ok(loaded.includes('commander'), loaded.join(' '));
});

test('sightline classify --help shows the full options of classify, from its own module', () => {
  const res = spawnSync(process.execPath, [...ARGS, 'classify', '--help'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /--crops <n>/);
  assert.ok(!loadedPackages(res.stderr).some((p) => p.startsWith('@tensorflow/')));
});

test('sightline serve loads onnxruntime and express but not TensorFlow.js', async () => {
  const db = tempDir('sightline-lazy-');
  try {
    const child = spawn(
      process.execPath,
      [...ARGS, 'serve', '--port', '0', '--host', '127.0.0.1', '--no-demo', '--model', testModelPath(), '--codes', testCodesPath(), '--db', db.path],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIGHTLINE_THREADS: '2', SIGHTLINE_LOG_LEVEL: 'info' } },
    );
    let stdout = '';
    let stderr = '';
    let stopping = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      // One SIGTERM: a second one means "exit without waiting".
      if (!stopping && /"msg":"listening"/.test(stdout)) stopping = child.kill('SIGTERM');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    assert.match(stdout, /"msg":"listening"/, stderr);
    assert.equal(code, 0, `signal ${signal}: ${stderr}`);
    const loaded = loadedPackages(stderr);
    assert.ok(loaded.includes('onnxruntime-node') && loaded.includes('express'), loaded.join(' '));
    assert.deepEqual(loaded.filter((p) => p.startsWith('@tensorflow/')), []);
  } finally {
    db.cleanup();
  }
});
