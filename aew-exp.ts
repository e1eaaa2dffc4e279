// Offline retrieval experiments on cached embeddings (dev use only).
import { readFileSync, writeFileSync } from 'node:fs';
import { useBackend } from '/work/main/training/backend.js';
import { DEFAULT_AE, type AutoencoderOptions } from '/work/main/training/autoencoder.js';
import { trainAutoencoder } from '/work/main/training/codes/train.js';
import { exportCodesOnnx } from '/work/main/training/codes/export.js';
import { createCodesSession } from '/work/main/model/codes.js';
import { codeWords, hammingWords } from '/work/main/index/codes.js';
import { columnMean, lshCodes, makeLsh } from '/work/main/training/codes/lsh.js';
import { createDotSession, rowNormsSquared } from '/work/main/training/codes/ort-math.js';
import { MetricMeans, metricsFromRanks, Ranker } from '/work/main/training/retrieval-eval.js';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const tag = args['tag'] ?? 'ep1';
const qtag = args['qtag'] ?? tag;
const D = 4096;
const f32 = (p: string) => { const b = readFileSync(p); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const i32 = (p: string) => { const b = readFileSync(p); return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
let dbE = f32(`/tmp/aew/${tag}-train-emb.bin`); const dbP = f32(`/tmp/aew/${tag}-train-prob.bin`); let dbL = i32(`/tmp/aew/${tag}-train-lab.bin`);
const qE = f32(`/tmp/aew/${qtag}-test-emb.bin`); const qP = f32(`/tmp/aew/${qtag}-test-prob.bin`); const qL = i32(`/tmp/aew/${qtag}-test-lab.bin`);
const N = Math.min(Number(args['db'] ?? 60000), dbL.length); dbE = dbE.subarray(0, N * D); dbL = dbL.subarray(0, N);
const Q = Math.min(Number(args['q'] ?? 2000), qL.length);
const bits = Number(args['bits'] ?? 128);
await useBackend('wasm');
const opts: AutoencoderOptions = { ...DEFAULT_AE, bits, epochs: Number(args['epochs'] ?? DEFAULT_AE.epochs), hidden: (args['hidden'] ?? '512').split(',').filter(Boolean).map(Number),
  noiseStd: Number(args['noise'] ?? DEFAULT_AE.noiseStd), clsWeight: Number(args['cls'] ?? DEFAULT_AE.clsWeight), lr: Number(args['lr'] ?? DEFAULT_AE.lr), balanceWeight: Number(args['bal'] ?? DEFAULT_AE.balanceWeight), batch: Number(args['batch'] ?? 256) };
const trainN = Math.min(N, Number(args['trainN'] ?? N));
let codesPath = args['codes'];
if (!codesPath) {
  const t = performance.now();
  const tr = await trainAutoencoder({ embeddings: dbE, n: trainN, dim: D, labels: dbL, numClasses: 10 }, opts, (p) => { if (p.step % 50 === 0) process.stderr.write(`ep ${p.epoch} ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} rec ${p.rec.toFixed(3)} cls ${p.cls.toFixed(3)}\r`); });
  console.log('train', ((performance.now() - t) / 1000).toFixed(1), 's', JSON.stringify(tr.history.map((h) => [h.rec.toFixed(3), h.cls.toFixed(3), h.accuracy.toFixed(3), h.seconds.toFixed(0)])), JSON.stringify(tr.stats));
  codesPath = `/tmp/aew/codes-${args['name'] ?? 'x'}.onnx`;
  writeFileSync(codesPath, exportCodesOnnx(tr.encoder, { version: 1, bits, embeddingDim: D, modelHash: '0'.repeat(64), model: { name: 'dev', version: '1' }, cropPolicy: 'center', normalization: 'x', hidden: opts.hidden, classes: [], metrics: {}, training: {} }));
}
const codes = await createCodesSession(codesPath);
const enc = async (x: Float32Array, n: number) => { const out = new Uint8Array(n * bits / 8); for (let s = 0; s < n; s += 2048) { const m = Math.min(2048, n - s); out.set(await codes.encode(x.subarray(s * D, (s + m) * D), m), s * bits / 8); } return codeWords(out); };
const dbC = await enc(dbE, N); const qC = await enc(qE, Q);
const dot = await createDotSession(D, 2);
const lsh = makeLsh(bits, D, columnMean(dbE, N, D), 1);
const dbLsh = codeWords(await lshCodes(lsh, dot, dbE, N)); const qLsh = codeWords(await lshCodes(lsh, dot, qE, Q));
const dbN = rowNormsSquared(dbE, N, D);
const ranker = new Ranker(N);
const W = bits / 32;
const names = ['euclid', 'cosine', 'classifier', 'hamming', 'lsh', 'srv-euclid', 'srv-cosine', 'srv-hamming'];
const acc = Object.fromEntries(names.map((n) => [n, new MetricMeans()]));
const dist = new Float64Array(N), cos = new Float64Array(N), ham = new Uint16Array(N), skip = new Uint8Array(N);
const cand = (hd: Uint16Array, want: number) => { const count = new Int32Array(bits + 1); for (let i = 0; i < N; i++) count[hd[i]!]!++; let kth = 0, seen = 0; for (; kth <= bits; kth++) { seen += count[kth]!; if (seen >= want) break; } const out: number[] = []; for (let d = 0; d <= kth; d++) for (let i = 0; i < N && out.length < want; i++) if (hd[i] === d) out.push(i); return out; };
const t0 = performance.now();
for (let s = 0; s < Q; s += 128) {
  const m = Math.min(128, Q - s);
  const dots = await dot.dot(qE.subarray(s * D, (s + m) * D), m, dbE, N);
  for (let j = 0; j < m; j++) {
    const qi = s + j; const lab = qL[qi]!; const rel = (i: number) => dbL[i] === lab;
    let qn = 0; for (let d = 0; d < D; d++) qn += qE[qi * D + d]! ** 2;
    for (let i = 0; i < N; i++) { dist[i] = qn + dbN[i]! - 2 * dots[j * N + i]!; cos[i] = 1 - dots[j * N + i]! / Math.sqrt(qn * dbN[i]! + 1e-30); }
    acc.euclid!.add(metricsFromRanks(ranker.byDistance(dist, rel)));
    acc.cosine!.add(metricsFromRanks(ranker.byDistance(cos, rel)));
    const pd = new Float64Array(N); for (let i = 0; i < N; i++) { let x = 0; for (let k = 0; k < 10; k++) x += (qP[qi * 10 + k]! - dbP[i * 10 + k]!) ** 2; pd[i] = x; }
    acc.classifier!.add(metricsFromRanks(ranker.byDistance(pd, rel)));
    for (let i = 0; i < N; i++) ham[i] = hammingWords(qLsh, qi * W, dbLsh, i * W, W);
    acc.lsh!.add(metricsFromRanks(ranker.byHamming(ham, bits, rel)));
    for (let i = 0; i < N; i++) ham[i] = hammingWords(qC, qi * W, dbC, i * W, W);
    acc.hamming!.add(metricsFromRanks(ranker.byHamming(ham, bits, rel)));
    const c = cand(ham, 1000);
    const byE = [...c].sort((a, b) => dist[a]! - dist[b]! || a - b).slice(0, 100);
    const byC = [...c].sort((a, b) => cos[a]! - cos[b]! || a - b).slice(0, 100);
    acc['srv-euclid']!.add(metricsFromRanks(ranker.byHeadThenHamming(byE, ham, bits, rel, skip)));
    acc['srv-cosine']!.add(metricsFromRanks(ranker.byHeadThenHamming(byC, ham, bits, rel, skip)));
    acc['srv-hamming']!.add(metricsFromRanks(ranker.byHeadThenHamming(c.slice(0, 100), ham, bits, rel, skip)));
  }
}
console.log(`db ${N} q ${Q} bits ${bits} rank ${((performance.now() - t0) / 1000).toFixed(1)} s  ${JSON.stringify(args)}`);
for (const n of names) { const r = acc[n]!.means(); console.log(n.padEnd(12), r.ap.toFixed(4), r.apAtK.toFixed(4), r.pAt10.toFixed(4)); }
await codes.close(); await dot.close();
