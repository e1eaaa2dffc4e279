import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IndexLocationError, parseDbLocation, redactUrl } from '../../index/index.js';
import { loadConfig } from '../../server/config.js';
import { ConfigError } from '../../server/errors.js';

test('a folder is a SQLite location; postgres:// and postgresql:// URLs are PostgreSQL, password hidden in display', () => {
  assert.deepEqual(parseDbLocation('data'), { kind: 'sqlite', dir: resolve('data') });
  assert.deepEqual(parseDbLocation('./postgres'), { kind: 'sqlite', dir: resolve('postgres') });
  const pg = parseDbLocation('postgres://app:s3cret@db.example:5433/sightline?sslmode=disable');
  assert.equal(pg.kind, 'postgres');
  assert.ok(pg.kind === 'postgres' && pg.url.includes('s3cret') && !pg.display.includes('s3cret') && pg.display.includes('app:***@db.example:5433'));
  assert.equal(parseDbLocation('postgresql://db.example/sightline').kind, 'postgres');
  assert.equal(parseDbLocation('postgres:///sightline?host=/var/run/postgresql').kind, 'postgres', 'a socket folder as host');
});

test('a URL this build cannot open is refused with a kind and a message naming it (never its password)', () => {
  const cases: [string, RegExp][] = [
    ['postgres://', /--db 'postgres:\/\/' names no host/],
    ['postgres:///sightline', /names no host/],
    ['mysql://u:pw@h/db', /unsupported scheme 'mysql'/],
    ['postgres://u:pw@h:99999/db', /not a valid URL|port/],
  ];
  for (const [value, re] of cases) {
    assert.throws(() => parseDbLocation(value), (err: unknown) => {
      assert.ok(err instanceof IndexLocationError, value);
      assert.equal(err.kind, 'invalid_argument');
      assert.match(err.message, re);
      assert.doesNotMatch(err.message, /pw@/, 'the password is never printed');
      return true;
    });
  }
  assert.equal(redactUrl('postgres://u:pw@h:99999/db'), 'postgres://u:***@h:99999/db');
});

test('config: --db with a URL selects PostgreSQL and creates no folder; a --db folder wins over SIGHTLINE_DATABASE_URL', () => {
  const cwd = process.cwd();
  const work = mkdtempSync(join(tmpdir(), 'sightline-location-'));
  try {
    process.chdir(work);
    const c = loadConfig({ dataDir: 'postgres://u:pw@127.0.0.1:5432/db' }, {});
    assert.equal(c.database.kind, 'postgres');
    assert.equal(c.dataDir, resolve(work, 'data'), 'local files stay in the default folder');
    assert.equal(existsSync(join(work, 'postgres:')), false);
    const fromEnv = loadConfig({}, { SIGHTLINE_DATABASE_URL: 'postgresql://h/db', SIGHTLINE_DATA: '/srv/files' });
    assert.equal(fromEnv.database.kind, 'postgres');
    assert.equal(fromEnv.dataDir, '/srv/files');
    const folder = loadConfig({ dataDir: '/srv/catalog' }, { SIGHTLINE_DATABASE_URL: 'postgresql://h/db' });
    assert.deepEqual(folder.database, { kind: 'sqlite', dir: '/srv/catalog' });
    assert.throws(() => loadConfig({ dataDir: 'postgres://u:pw@/db' }, {}, { dataDir: '--db' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /--db 'postgres:\/\/u:\*\*\*@\/db' (names no host|is not a valid URL)/);
      return true;
    });
    assert.throws(() => loadConfig({}, { SIGHTLINE_DATABASE_URL: 'redis://h' }), /SIGHTLINE_DATABASE_URL 'redis:\/\/h\/?': unsupported scheme 'redis'/);
  } finally {
    process.chdir(cwd);
    rmSync(work, { recursive: true, force: true });
  }
});
