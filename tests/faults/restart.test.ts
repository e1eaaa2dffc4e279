/**
 * Restarts after a crash: the writer lock when node is PID 1 (Docker), and a damaged database that
 * must be refused with instructions by `serve` and by the CLI commands that open the catalog.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ownerAlive, parseOwner, processStart } from '../../index/lock.js';
import { tempDir } from '../server/helpers.js';
import { listeningUrl, modelFlags, runCli } from './fixtures/proc.js';
import { faultReport } from './report.js';

const report = faultReport('restarts');
const work = tempDir('sightline-faults-restart-');
after(() => work.cleanup());

const UNSHARE = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL'];
/** Why PID namespaces cannot be used here, or undefined when they can. */
function unshareUnavailable(): string | undefined {
  const r = spawnSync(UNSHARE[0] as string, [...UNSHARE.slice(1), 'sh', '-c', 'echo $$'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return `unshare cannot run: ${r.error.message}`;
  if (r.status !== 0 || r.stdout.trim() !== '1') return `unshare --pid fails here (needs root or user namespaces): ${r.stderr.trim() || `exit ${r.status}`}`;
  return undefined;
}

describe('lock identity', () => {
  const self = { pid: 1, boot: 'boot-a', start: 500 };
  it('a lock is held only by a live process with the recorded start time in this boot', () => {
    const cases: [string, Parameters<typeof ownerAlive>[0], boolean][] = [
      ['bare pid 1 written by an earlier PID 1 (container restart)', { pid: 1, boot: null, start: null }, false],
      ['pid 1 with another start time', { pid: 1, boot: 'boot-a', start: 400 }, false],
      ['ourselves', { pid: 1, boot: 'boot-a', start: 500 }, true],
      ['written before a reboot', { pid: 7, boot: 'boot-b', start: 100 }, false],
      ['dead pid', { pid: 8, boot: 'boot-a', start: 100 }, false],
      ['live pid, same start', { pid: 7, boot: 'boot-a', start: 100 }, true],
      ['live pid reused by a newer process', { pid: 7, boot: 'boot-a', start: 90 }, false],
    ];
    for (const [what, owner, held] of cases) {
      assert.equal(
        ownerAlive(owner, self, (pid) => (pid === 7 ? 100 : null), (pid) => pid === 7),
        held,
        what,
      );
    }
    assert.deepEqual(parseOwner('1\n'), { pid: 1, boot: null, start: null });
    assert.equal(parseOwner(''), null);
    assert.equal(typeof processStart(process.pid), 'number', 'this platform has /proc/PID/stat');
    report.add({ kind: 'lock identity rules (7 cases)', outcome: 'stale locks taken over, live ones kept', lost: 0 });
  });

  it('node as PID 1: kill -9 then a restart takes the stale lock over', { timeout: 120_000 }, async (t) => {
    const why = unshareUnavailable();
    if (why) {
      report.add({ kind: 'PID-1 restart after kill -9', outcome: `skipped: ${why}`, lost: 0 });
      t.skip(why);
      return;
    }
    const db = join(work.path, 'pid1');
    const args = ['serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--no-demo', ...modelFlags()];
    const first = runCli(args, { wrap: UNSHARE });
    await listeningUrl(first);
    const lock1 = parseOwner(readFileSync(join(db, 'index.lock'), 'utf8'));
    assert.equal(lock1?.pid, 1, 'node ran as PID 1');
    await first.kill9();
    const second = runCli(args, { wrap: UNSHARE });
    try {
      const url = await listeningUrl(second);
      const res = await fetch(`${url}/healthz`);
      assert.ok(res.status < 500, `healthz answered ${res.status}`);
      const lock2 = parseOwner(readFileSync(join(db, 'index.lock'), 'utf8'));
      assert.equal(lock2?.pid, 1);
      assert.notEqual(lock2?.start, lock1?.start, 'the new lock records the new process start');
      report.add({ kind: 'PID-1 restart after kill -9', outcome: 'restarted, stale lock of pid 1 taken over', lost: 0 });
    } finally {
      await second.kill9();
    }
  });
});

describe('damaged database', () => {
  it('serve and the catalog commands refuse a database that fails quick_check, saying what to do', { timeout: 180_000 }, async () => {
    const db = join(work.path, 'corrupt');
    const index = runCli(['index', join(new URL('../fixtures/images', import.meta.url).pathname), '--db', db, ...modelFlags()]);
    assert.equal(await index.exited, 0, index.output());
    // Overwrite a page in the middle of the file (the images b-tree and its index live there).
    const file = join(db, 'sightline.db');
    const pages = statSync(file).size / 4096;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, 4096 * Math.floor(pages / 2));
    closeSync(fd);
    for (const args of [
      ['serve', '--db', db, '--port', '0', '--no-demo', ...modelFlags()],
      ['stats', '--db', db],
      ['index', join(new URL('../fixtures/images', import.meta.url).pathname), '--db', db, ...modelFlags()],
    ]) {
      const child = runCli(args);
      const code = await child.exited;
      assert.notEqual(code, 0, `${args[0]} exited 0:\n${child.output()}`);
      assert.match(child.output(), /is damaged/, args[0]);
      assert.match(child.output(), /restore it from a backup|\.recover/, args[0]);
      assert.doesNotMatch(child.output(), /"msg":"listening"/, `${args[0]} never served`);
      assert.doesNotMatch(child.output(), /\n\s+at /, `${args[0]} printed no stack`);
      report.add({ kind: `DB page overwritten, then \`${args[0]}\``, outcome: `refused, exit ${code}, message says restore or .recover`, lost: 0 });
    }
  });
});
