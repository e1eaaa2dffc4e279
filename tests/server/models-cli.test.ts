/**
 * `sightline models` and registry names where a model is asked for, through the real CLI and the
 * real server config: a name not pulled yet fails in one line with the pull command; a pulled name
 * (a cache laid out as `models pull` leaves it) serves, classifies and searches with its own codes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import { writeLshCodes } from '../../cli/commands/models.js';
import { codesPathFor, importedPath } from '../../model/registry/index.js';
import { loadConfig } from '../../server/index.js';
import { FIXTURES, startTestServer, tempDir, testModelPath } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const work = tempDir('sightline-models-');
after(() => work.cleanup());

function cli(home: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, SIGHTLINE_HOME: home, SIGHTLINE_THREADS: '2' };
  delete env['SIGHTLINE_MODEL_MIRROR'];
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8', env });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** A cache as `models pull alexnet-imagenet` leaves it, with the tiny test model standing in for the import. */
async function pulledHome(): Promise<string> {
  const home = join(work.path, `home-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(home, 'models', 'alexnet-imagenet'), { recursive: true });
  copyFileSync(testModelPath(), importedPath(home, 'alexnet-imagenet'));
  await writeLshCodes(importedPath(home, 'alexnet-imagenet'), codesPathFor(home, 'alexnet-imagenet'));
  return home;
}

const noStack = (stderr: string): void => assert.doesNotMatch(stderr, /^\s+at /m);

describe('sightline models (CLI)', () => {
  it('list --json prints every entry with its sha256', () => {
    const r = cli(join(work.path, 'empty'), 'models', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { models: { name: string; sha256: string; size: number; pulled: boolean; url?: string }[] };
    assert.deepEqual(doc.models.map((m) => m.name), ['alexnet-imagenet', 'alexnet-imagenet-int8', 'sightline-fmnist']);
    for (const m of doc.models) assert.match(m.sha256, /^[0-9a-f]{64}$/, m.name);
    assert.deepEqual(doc.models.map((m) => m.pulled), [false, false, true]);
  });

  it('a name not pulled yet: one line with the pull command, no stack', () => {
    const r = cli(join(work.path, 'empty'), 'classify', join(FIXTURES, 'images', 'dog.jpg'), '--model', 'alexnet-imagenet');
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /model 'alexnet-imagenet' is not pulled yet: run 'sightline models pull alexnet-imagenet' \(or add --pull\)/);
    const s = cli(join(work.path, 'empty'), 'search', join(FIXTURES, 'images', 'dog.jpg'), '--model', 'alexnet-imagenet', '--db', join(work.path, 'db'));
    assert.equal(s.code, 1);
    assert.match(s.stderr, /not pulled yet/);
  });

  it('an unreachable mirror: the URL and both ways out, no stack; nothing cached', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const home = join(work.path, 'offline');
    const r = cli(home, 'models', 'pull', 'alexnet-imagenet', '--mirror', `http://127.0.0.1:${port}/zoo`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`http://127.0.0.1:${port}/zoo/bvlcalexnet-12.onnx: ECONNREFUSED`));
    assert.match(r.stderr, /SIGHTLINE_MODEL_MIRROR.*sightline models pull alexnet-imagenet --from FILE/);
    noStack(r.stderr);
    assert.ok(!existsSync(importedPath(home, 'alexnet-imagenet')));
  });

  it('--from a file that is not the zoo file: refused, the file is kept', () => {
    const wrong = join(work.path, 'not-alexnet.onnx');
    writeFileSync(wrong, readFileSync(testModelPath()));
    const r = cli(join(work.path, 'from'), 'models', 'pull', 'alexnet-imagenet', '--from', wrong);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not the registry's bvlcalexnet-12.onnx: its copy has \d+ bytes, expected 243863787/);
    noStack(r.stderr);
    assert.ok(existsSync(wrong));
  });

  it('a pulled name: path, classify --model NAME, rm', async () => {
    const home = await pulledHome();
    assert.equal(cli(home, 'models', 'path', 'alexnet-imagenet').stdout.trim(), importedPath(home, 'alexnet-imagenet'));
    const c = cli(home, 'classify', join(FIXTURES, 'images', 'dog.jpg'), '--model', 'alexnet-imagenet', '--json', '--crops', '1');
    assert.equal(c.code, 0, c.stderr);
    const line = JSON.parse(c.stdout) as { predictions: unknown[]; unknown: unknown; ood_score: unknown };
    assert.equal(line.predictions.length, 5);
    assert.equal(typeof line.unknown, 'boolean');
    assert.equal(typeof line.ood_score, 'number');
    assert.match(cli(home, 'models', 'rm', 'alexnet-imagenet').stdout, /removed alexnet-imagenet/);
    assert.ok(!existsSync(join(home, 'models', 'alexnet-imagenet')));
  });
});

describe('registry names in the server config', () => {
  it('SIGHTLINE_MODEL=NAME resolves to the cached model and its own codes model; the server classifies and searches', async () => {
    const home = await pulledHome();
    const config = loadConfig({}, { SIGHTLINE_MODEL: 'alexnet-imagenet', SIGHTLINE_HOME: home });
    assert.equal(config.modelPath, importedPath(home, 'alexnet-imagenet'));
    assert.equal(config.codesPath, codesPathFor(home, 'alexnet-imagenet'));
    assert.throws(() => loadConfig({}, { SIGHTLINE_MODEL: 'alexnet-imagenet-int8', SIGHTLINE_HOME: home }), /config 'modelPath' \(SIGHTLINE_MODEL\): model 'alexnet-imagenet-int8' is not pulled yet/);
    const srv = await startTestServer({ modelPath: 'alexnet-imagenet', codesPath: undefined, home });
    try {
      const dog = readFileSync(join(FIXTURES, 'images', 'dog.jpg'));
      const up = await request(srv.app).post('/v1/images').attach('image', dog, 'dog.jpg');
      assert.equal(up.status, 201, up.text);
      const s = await request(srv.app).post('/v1/search').attach('image', dog, 'dog.jpg');
      assert.equal(s.status, 200, s.text);
    } finally {
      await srv.close();
    }
  });
});
