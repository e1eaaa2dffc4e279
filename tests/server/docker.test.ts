// Docker cannot run here: this keeps the Dockerfile honest by checking what it COPYs exists,
// is not excluded by .dockerignore, and that the builder really produces what the runtime takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

interface Stage {
  name: string;
  from: string;
  lines: string[];
}

/** Instructions with line continuations joined, grouped by stage. */
function stages(): Stage[] {
  const joined = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const line of joined) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ name: from[2] ?? String(out.length), from: from[1] ?? '', lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

function copies(stage: Stage): { from?: string; sources: string[]; dest: string }[] {
  return stage.lines
    .filter((l) => /^COPY\s/i.test(l))
    .map((l) => {
      const parts = l.split(/\s+/).slice(1);
      const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
      const args = parts.filter((p) => !p.startsWith('--'));
      return { ...(from ? { from } : {}), sources: args.slice(0, -1), dest: args.at(-1) ?? '' };
    });
}

function ignored(path: string): boolean {
  return ignore.some((pattern) => {
    if (pattern.startsWith('**/')) return path.endsWith(pattern.slice(3).replace('*', ''));
    if (pattern.startsWith('*.')) return path.endsWith(pattern.slice(1));
    return path === pattern || path.startsWith(`${pattern}/`);
  });
}

test('every COPY from the build context exists and is not excluded by .dockerignore', () => {
  const all = stages().flatMap((s) => copies(s).filter((c) => c.from === undefined));
  assert.ok(all.length >= 8);
  for (const c of all) {
    for (const src of c.sources) {
      assert.ok(existsSync(join(ROOT, src)), `COPY source '${src}' exists`);
      assert.equal(ignored(src), false, `COPY source '${src}' is not in .dockerignore`);
    }
  }
});

test('the runtime stage copies from the builder only what the builder makes or received', () => {
  const [builder, runtime] = stages();
  assert.equal(builder?.name, 'builder');
  assert.equal(runtime?.name, 'runtime');
  const workdir = builder?.lines.find((l) => l.startsWith('WORKDIR'))?.split(/\s+/)[1] ?? '';
  const received = copies(builder as Stage).map((c) => posix.join(workdir, c.dest));
  const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
  const built = [posix.join(workdir, 'node_modules'), posix.join(workdir, tsconfig.compilerOptions.outDir)];
  for (const c of copies(runtime as Stage).filter((x) => x.from === 'builder')) {
    for (const src of c.sources) {
      const ok = built.includes(src) || received.some((r) => src === r || src.startsWith(`${r}/`));
      assert.ok(ok, `'${src}' is produced or copied in the builder stage`);
    }
  }
  const runs = (builder as Stage).lines.filter((l) => l.startsWith('RUN')).join('\n');
  assert.match(runs, /npm ci --ignore-scripts/);
  assert.match(runs, /npm rebuild better-sqlite3 hnswlib-node sharp/);
  assert.match(runs, /npm run build/);
  assert.match(runs, /npm prune --omit=dev/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['build'] ?? '', /tsc/);
  assert.match(readFileSync(join(ROOT, 'bin', 'sightline.js'), 'utf8'), new RegExp(`${tsconfig.compilerOptions.outDir}/cli/main\\.js`));
});

test('runtime stage: node 20 bookworm slim, non-root, /data volume, readiness healthcheck, serve', () => {
  const all = stages();
  assert.match(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  for (const s of all) assert.equal(s.from, '${NODE_IMAGE}');
  const runtime = all.at(-1) as Stage;
  const user = runtime.lines.filter((l) => l.startsWith('USER')).at(-1);
  assert.ok(user && !/\broot\b|\s0$/.test(user), `runs as a non-root user (${user})`);
  assert.ok(runtime.lines.some((l) => /^VOLUME\s+\["?\/data"?\]/.test(l)));
  assert.ok(runtime.lines.some((l) => /^HEALTHCHECK .*\/v2\/health\/ready/.test(l)));
  assert.ok(runtime.lines.some((l) => /^CMD \["node", "bin\/sightline\.js", "serve"\]/.test(l)));
  assert.ok(runtime.lines.some((l) => /SIGHTLINE_DATA=\/data/.test(l)));
  assert.ok(existsSync(join(ROOT, 'docs', 'docker.md')), 'the GPU variant is documented');
});
