/**
 * "Unknown" images: the statistics on hand-made features, the fitted threshold keeping the asked
 * share known, the sidecar beside a model file (used only for that file), and `unknown`/`ood_score`
 * on real classifications of the tiny model with thresholds on either side of a photo's score.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { classifyImage } from '../../model/index.js';
import { DEFAULT_OOD, fitOod, oodScores, oodVerdict } from '../../model/ood.js';
import type { OodFeatures } from '../../model/ood.js';
import { oodSidecarPath, writeOodSidecar } from '../../model/ood-sidecar.js';
import { createSession } from '../../model/session.js';
import { mulberry32 } from '../../training/network.js';
import type { TinyModel } from './tiny-model.js';
import { buildTinyModel } from './tiny-model.js';

const photo = (name: string): Buffer => readFileSync(new URL(`../fixtures/images/${name}`, import.meta.url));

function feats(n: number, seed: number, scale: number): OodFeatures[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => ({ meanLogits: Float32Array.from({ length: 4 }, () => rand() * scale), embedding: Float32Array.from({ length: 3 }, () => rand()) }));
}

describe('ood statistics', () => {
  it('energy and max-softmax on hand-computed logits', () => {
    const f = { meanLogits: [0, Math.log(3)], embedding: [1, 0] };
    assert.ok(Math.abs(oodScores({ ...DEFAULT_OOD, statistic: 'energy' }, f) + Math.log(4)) < 1e-12);
    assert.ok(Math.abs(oodScores({ ...DEFAULT_OOD, statistic: 'msp' }, f) - 0.25) < 1e-12);
  });

  it('centroid: 0 on a class mean, 1 when orthogonal to every mean', () => {
    const ood = fitOod([{ meanLogits: [0], embedding: [2, 0] }, { meanLogits: [0], embedding: [0, 3] }], [0, 1], { statistic: 'centroid' });
    assert.ok(Math.abs(oodScores(ood, { meanLogits: [0], embedding: [5, 0] })) < 1e-9);
    assert.ok(Math.abs(oodScores(ood, { meanLogits: [0], embedding: [-1, -1] }) - 1 - Math.SQRT1_2) < 1e-9);
  });

  it('the fitted threshold keeps the asked share of the fitting images known, and larger logits are more known', () => {
    const fit = feats(400, 1, 10);
    for (const keep of [0.9, 0.97]) {
      const ood = fitOod(fit, new Int32Array(400), { statistic: 'energy', keep });
      const known = fit.filter((f) => !oodVerdict(ood, f).unknown).length / fit.length;
      assert.ok(known >= keep && known < keep + 0.01, `keep ${keep}: ${known}`);
    }
    const ood = fitOod(fit, new Int32Array(400), { statistic: 'energy' });
    const flat = feats(100, 2, 0.1).filter((f) => oodVerdict(ood, f).unknown).length;
    assert.equal(flat, 100, 'near-uniform small logits are all unknown');
  });
});

describe('unknown on classifications', () => {
  let tiny: TinyModel;
  before(() => {
    tiny = buildTinyModel();
  });
  after(() => tiny.cleanup());

  it('without a sidecar the default applies; a sidecar threshold flips the verdict; a stale sidecar is ignored', async () => {
    const plain = await createSession(tiny.path, { device: 'cpu', threads: 1 });
    const r = await classifyImage(plain, photo('dog.jpg'), { crops: 1, topk: 3, maxPixels: 1e8 });
    await plain.close();
    assert.deepEqual(plain.contract.ood, DEFAULT_OOD);
    assert.equal(typeof r.ood_score, 'number');
    assert.equal(r.unknown, r.ood_score > DEFAULT_OOD.threshold);
    const energy = oodScores({ ...DEFAULT_OOD, statistic: 'energy' }, r);

    for (const [threshold, unknown] of [[energy - 0.01, true], [energy + 0.01, false]] as const) {
      await writeOodSidecar(tiny.path, { statistic: 'energy', threshold, keep: 0.97, fittedOn: 'test', images: 1 });
      const s = await createSession(tiny.path, { device: 'cpu', threads: 1 });
      try {
        assert.equal(s.contract.ood?.threshold, threshold);
        const c = await classifyImage(s, photo('dog.jpg'), { crops: 1, topk: 3, maxPixels: 1e8 });
        assert.equal(c.unknown, unknown, `threshold ${threshold}, score ${c.ood_score}`);
        assert.ok(Math.abs(c.ood_score - energy) < 1e-4);
      } finally {
        await s.close();
      }
    }

    const side = JSON.parse(readFileSync(oodSidecarPath(tiny.path), 'utf8')) as { modelSha256: string };
    writeFileSync(oodSidecarPath(tiny.path), JSON.stringify({ ...side, modelSha256: 'f'.repeat(64) }));
    const warnings: string[] = [];
    const stale = await createSession(tiny.path, { device: 'cpu', threads: 1, logger: { info: () => undefined, warn: (_o: object, msg: string) => void warnings.push(msg) } });
    await stale.close();
    assert.deepEqual(stale.contract.ood, DEFAULT_OOD);
    assert.match(warnings.join('\n'), /fitted for another model file/);
  });
});
