/**
 * What happens between loading and serving: the golden-image readiness check and, on a first
 * start with an empty database, indexing the bundled demo gallery.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Config } from '../config.js';
import { DEMO_CLASSES } from '../demo/classes.js';
import { demoDir, goldenRegistry } from '../paths.js';
import type { Readiness } from '../ports.js';
import type { Runtime } from './runtime.js';
import { walkFiles } from './walk.js';

export interface Golden {
  image: string;
  label: string;
}

/** Config wins; else the registry entry for this model name; else none (the check is skipped). */
export async function goldenFor(config: Pick<Config, 'goldenImage' | 'goldenLabel'>, modelName: string, registry = goldenRegistry()): Promise<Golden | undefined> {
  if (config.goldenImage !== undefined || config.goldenLabel !== undefined) {
    if (config.goldenImage === undefined || config.goldenLabel === undefined) {
      throw new Error('SIGHTLINE_GOLDEN_IMAGE and SIGHTLINE_GOLDEN_LABEL must be set together');
    }
    return { image: config.goldenImage, label: config.goldenLabel };
  }
  let parsed: { models?: Record<string, { image?: unknown; label?: unknown }> };
  try {
    parsed = JSON.parse(await readFile(registry, 'utf8')) as typeof parsed;
  } catch {
    return undefined;
  }
  const entry = parsed.models?.[modelName];
  if (typeof entry?.image !== 'string' || typeof entry.label !== 'string') return undefined;
  return { image: isAbsolute(entry.image) ? entry.image : join(demoDir(), entry.image), label: entry.label };
}

/** Ready only when the golden image gets its known top label (the model loads and warms up before). */
export async function checkGolden(rt: Runtime): Promise<Readiness> {
  const { name } = rt.inference.info;
  let golden: Golden | undefined;
  try {
    golden = await goldenFor(rt.config, name);
  } catch (err) {
    return { ready: false, reason: (err as Error).message };
  }
  if (!golden) {
    rt.logger.warn({ model: name }, 'no golden image configured for this model: readiness skips the golden check (set SIGHTLINE_GOLDEN_IMAGE and SIGHTLINE_GOLDEN_LABEL)');
    return { ready: true, reason: 'ready (no golden image configured)' };
  }
  try {
    const bytes = await readFile(golden.image);
    const r = await rt.inference.classify(bytes, { topk: 1, crops: 10 });
    const top = r.predictions[0]?.label;
    if (top !== golden.label) {
      rt.logger.error({ image: golden.image, expected: golden.label, got: top }, 'golden image check failed: the model is not ready');
      return { ready: false, reason: `golden image '${golden.image}' was classified '${String(top)}', expected '${golden.label}'` };
    }
    rt.logger.info({ image: golden.image, label: top }, 'golden image check passed');
    return { ready: true, reason: 'ready' };
  } catch (err) {
    return { ready: false, reason: `golden image check failed: ${(err as Error).message}` };
  }
}

/**
 * Indexes server/demo/** on a first start with an empty database, for a model with the demo's classes. A marker in DATA records that
 * it started and finished, so a start interrupted half-way completes the gallery next time, while
 * a user who deleted demo images does not see them come back.
 */
export async function indexDemoGallery(rt: Runtime, opts: { dir?: string; signal?: AbortSignal } = {}): Promise<number> {
  const dir = opts.dir ?? demoDir();
  // Fashion-MNIST pictures in a catalog of another model (an imported ImageNet network, a model of
  // the user's own classes) would be noise in every search: only a model with the demo's classes gets them.
  const labels = rt.inference.info.labels;
  if (labels.length !== DEMO_CLASSES.length || DEMO_CLASSES.some((c, i) => c.label !== labels[i])) {
    rt.logger.info({ model: rt.inference.info.name }, 'demo gallery not indexed: the model does not have the Fashion-MNIST classes of the demo images');
    return 0;
  }
  const marker = join(rt.config.dataDir, 'demo.json');
  const state = await readFile(marker, 'utf8')
    .then((t) => (JSON.parse(t) as { state?: string }).state)
    .catch(() => undefined);
  if (state === 'done' || (state === undefined && (await rt.gallery.size()) > 0)) return 0;
  await writeFile(marker, JSON.stringify({ state: 'running' }));
  const entries = (await walkFiles(dir, { recursive: true })).filter((e) => e.path.endsWith('.png'));
  let added = 0;
  await rt.indexing.run(entries, {
    concurrency: 16,
    priority: 'background',
    ...(opts.signal ? { signal: opts.signal } : {}),
    onOutcome: (_pos, entry, o) => {
      if (o.kind === 'added') added++;
      else if (o.kind === 'failed') rt.logger.warn({ file: entry.path, reason: o.message }, 'demo image not indexed');
    },
  });
  if (!opts.signal?.aborted) await writeFile(marker, JSON.stringify({ state: 'done', images: entries.length }));
  rt.logger.info({ added, dir, complete: !opts.signal?.aborted }, 'demo gallery indexed');
  return added;
}
