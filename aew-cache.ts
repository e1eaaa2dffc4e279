// Embeds Fashion-MNIST train/test through a model and caches fc7 + softmax + labels (dev use only).
import { writeFileSync } from 'node:fs';
import { createSession } from '/work/main/model/session.js';
import { loadFashionMnist } from '/work/main/training/data/fashion-mnist.js';
import { embedDataset } from '/work/main/training/codes/embed.js';
const [model, tag, crops, trainN, testN] = process.argv.slice(2) as [string, string, string, string, string];
const s = await createSession(model, { threads: 2, device: 'cpu' });
for (const [split, n] of [['train', Number(trainN)], ['test', Number(testN)]] as const) {
  const ds = await loadFashionMnist(split, { size: s.contract.preprocess.resizeSize, limit: n });
  const t = performance.now();
  const e = await embedDataset(s, ds, Number(crops) as 1 | 10, (d, tot) => { if (d % 5000 < 64) process.stderr.write(`${split} ${d}/${tot}\r`); });
  console.log(split, ds.n, ((performance.now() - t) / 1000).toFixed(1), 's');
  const b = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  writeFileSync(`/tmp/aew/${tag}-${split}-emb.bin`, b(e.embeddings));
  writeFileSync(`/tmp/aew/${tag}-${split}-prob.bin`, b(e.probabilities));
  writeFileSync(`/tmp/aew/${tag}-${split}-lab.bin`, b(ds.labels));
}
await s.close();
