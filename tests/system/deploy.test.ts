/**
 * The deployment files in deploy/ say only what the server really reads and serves: every YAML
 * document parses, every SIGHTLINE_* variable they set is one server/config.ts reads (a misspelt
 * name would be silently ignored in production), the probes and the load balancer's health check
 * use routes the app has, ports match, and HAProxy accepts its configuration. YAML is parsed by
 * Debian's python3-yaml (no YAML parser among our dependencies); `haproxy -c` needs Debian package: haproxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { configFromEnv } from '../../server/config.js';
import { openApiDocument } from '../../server/openapi.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';
const HAPROXY = '/usr/sbin/haproxy';
const yamlSkip = spawnSync(PYTHON, ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0 ? false : `${PYTHON} cannot import yaml (Debian package: python3-yaml)`;
const haproxySkip = existsSync(HAPROXY) ? false : `${HAPROXY} not found (Debian package: haproxy)`;

type Doc = Record<string, unknown>;

function loadYaml(rel: string): Doc[] {
  const run = spawnSync(PYTHON, ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', `${ROOT}${rel}`], { encoding: 'utf8' });
  assert.equal(run.status, 0, `${rel} does not parse: ${run.stderr}`);
  return JSON.parse(run.stdout) as Doc[];
}

const at = (v: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], v);

/** A variable the server reads: configFromEnv maps it to a config key. */
function assertKnownVariable(name: string, where: string): void {
  if (!name.startsWith('SIGHTLINE_')) return;
  assert.equal(Object.keys(configFromEnv({ [name]: 'x' })).length, 1, `${where} sets ${name}, which server/config.ts does not read`);
}

/** GET routes of the app, from its OpenAPI document (checked against the router by openapi.test.ts). */
function getRoutes(): Set<string> {
  const info = { name: 'm', version: '1', labels: ['a'], inputShape: [1, 28, 28] as const, embeddingDim: 4096, io: { input: 'images', logits: 'logits', embedding: 'embedding' }, provider: 'cpu' };
  const paths = (openApiDocument(info) as { paths: Record<string, Record<string, unknown>> }).paths;
  return new Set(Object.entries(paths).filter(([, ops]) => 'get' in ops).map(([p]) => p));
}

interface Container {
  name: string;
  env?: { name: string }[];
  ports?: { containerPort: number }[];
  readinessProbe?: { httpGet: { path: string } };
  livenessProbe?: { httpGet: { path: string } };
}

function checkContainer(c: Container, where: string): void {
  const routes = getRoutes();
  const env = c.env ?? [];
  for (const e of env) assertKnownVariable(e.name, where);
  assert.ok(env.some((e) => e.name === 'SIGHTLINE_DATABASE_URL'), `${where}: replicas need the shared database`);
  assert.ok(env.some((e) => e.name === 'SIGHTLINE_BLOB_DIR'), `${where}: replicas need the shared blob folder`);
  for (const probe of [c.readinessProbe, c.livenessProbe]) {
    assert.ok(probe, `${where}: readiness and liveness probes`);
    assert.ok(routes.has(probe.httpGet.path), `${where}: probe path ${probe.httpGet.path} is not a GET route of the server`);
  }
  assert.equal(c.readinessProbe?.httpGet.path, '/v2/health/ready');
  assert.equal(c.ports?.[0]?.containerPort, 8080, `${where}: the image listens on 8080 (SIGHTLINE_PORT)`);
}

test('compose: the replicas reach the postgres service, share the blob volume, and set only real variables', { skip: yamlSkip }, () => {
  const [compose] = loadYaml('deploy/compose.yaml');
  const services = at(compose, 'services') as Record<string, Doc>;
  assert.deepEqual(Object.keys(services).sort(), ['lb', 'postgres', 'sightline']);
  const env = at(services, 'sightline', 'environment') as Record<string, string>;
  for (const name of Object.keys(env)) assertKnownVariable(name, 'compose sightline');
  const url = new URL((env['SIGHTLINE_DATABASE_URL'] ?? '').replace('${POSTGRES_PASSWORD}', 'pw'));
  assert.equal(url.protocol, 'postgres:');
  assert.equal(url.hostname, 'postgres', 'the database host is the compose service');
  assert.equal(url.pathname.slice(1), at(services, 'postgres', 'environment', 'POSTGRES_DB'));
  assert.equal(url.username, at(services, 'postgres', 'environment', 'POSTGRES_USER'));
  assert.match(String(at(services, 'postgres', 'image')), /pgvector/);
  const blobDir = env['SIGHTLINE_BLOB_DIR'];
  const mounts = at(services, 'sightline', 'volumes') as string[];
  assert.ok(mounts.includes(`blobs:${blobDir}`), 'the blob folder is the named volume every replica mounts');
  assert.ok(Number(at(services, 'sightline', 'deploy', 'replicas')) >= 2);
  const lbMounts = at(services, 'lb', 'volumes') as string[];
  assert.ok(lbMounts.some((m) => m.startsWith('./haproxy.cfg:')));
});

test('haproxy.cfg: valid, checks readiness, balances over the compose service on the replicas\' port', { skip: haproxySkip }, () => {
  const run = spawnSync(HAPROXY, ['-c', '-f', `${ROOT}deploy/haproxy.cfg`], { encoding: 'utf8' });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  const cfg = readFileSync(`${ROOT}deploy/haproxy.cfg`, 'utf8');
  assert.match(cfg, /^\s*option httpchk GET \/v2\/health\/ready$/m);
  assert.ok(getRoutes().has('/v2/health/ready'));
  assert.match(cfg, /^\s*server-template \w+ \d+ sightline:8080 /m);
});

test('kubernetes: Deployment and KServe InferenceService run the server with real variables, probes and port', { skip: yamlSkip }, () => {
  const docs = loadYaml('deploy/k8s/sightline.yaml');
  assert.deepEqual(docs.map((d) => d['kind']), ['PersistentVolumeClaim', 'Deployment', 'Service', 'PodDisruptionBudget']);
  const [pvc, deployment, service] = docs;
  assert.deepEqual(at(pvc, 'spec', 'accessModes'), ['ReadWriteMany'], 'the blob volume is shared by the replicas');
  const containers = at(deployment, 'spec', 'template', 'spec', 'containers') as Container[];
  assert.equal(containers.length, 1);
  checkContainer(containers[0] as Container, 'Deployment');
  assert.deepEqual(at(service, 'spec', 'selector'), at(deployment, 'spec', 'selector', 'matchLabels'));

  const [isvc] = loadYaml('deploy/k8s/inferenceservice.yaml');
  assert.equal(at(isvc, 'apiVersion'), 'serving.kserve.io/v1beta1');
  assert.equal(at(isvc, 'kind'), 'InferenceService');
  const predictor = at(isvc, 'spec', 'predictor', 'containers', 0) as Container;
  assert.equal(predictor.name, 'kserve-container');
  checkContainer(predictor, 'InferenceService');
  assert.ok(getRoutes().has('/v2/models/{name}/ready'), 'the server speaks the Open Inference Protocol');
  const claim = at(isvc, 'spec', 'predictor', 'volumes', 0, 'persistentVolumeClaim', 'claimName');
  assert.equal(claim, at(pvc, 'metadata', 'name'));
});
