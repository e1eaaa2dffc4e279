/** Eigen-decomposition of the RGB pixel covariance, for the paper's PCA color augmentation. */
import type { SquareDataset } from './data/dataset.js';

export interface ColorPca {
  /** Row-major 3×3: column j is the j-th eigenvector. */
  vectors: number[];
  /** Square roots of the covariance eigenvalues (std along each axis, 0–255 units), so αᵢ·λᵢ is a pixel shift. */
  values: number[];
}

/** Covariance of RGB values (0–255) over at most `sample` images. */
export function rgbCovariance(ds: SquareDataset, sample = 5000): number[] {
  if (ds.channels !== 3) throw new Error('PCA color augmentation needs RGB data');
  const per = ds.size * ds.size * 3;
  const step = Math.max(1, Math.floor(ds.n / sample));
  const s = new Float64Array(3);
  const ss = new Float64Array(9);
  let count = 0;
  for (let i = 0; i < ds.n; i += step) {
    for (let p = i * per; p < (i + 1) * per; p += 3) {
      for (let a = 0; a < 3; a++) {
        const va = ds.pixels[p + a] as number;
        s[a] = (s[a] as number) + va;
        for (let b = 0; b < 3; b++) ss[a * 3 + b] = (ss[a * 3 + b] as number) + va * (ds.pixels[p + b] as number);
      }
      count++;
    }
  }
  const cov: number[] = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) cov.push((ss[a * 3 + b] as number) / count - ((s[a] as number) / count) * ((s[b] as number) / count));
  return cov;
}

/** Jacobi eigenvalue iteration for a symmetric 3×3 matrix. */
export function symmetricEigen3(m: number[]): ColorPca {
  const a = [...m];
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = Math.abs(a[1] as number) + Math.abs(a[2] as number) + Math.abs(a[5] as number);
    if (off < 1e-12) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]] as const) {
      const apq = a[p * 3 + q] as number;
      if (Math.abs(apq) < 1e-15) continue;
      const theta = ((a[q * 3 + q] as number) - (a[p * 3 + p] as number)) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1);
      const s = t * c;
      for (let k = 0; k < 3; k++) {
        const akp = a[k * 3 + p] as number;
        const akq = a[k * 3 + q] as number;
        a[k * 3 + p] = c * akp - s * akq;
        a[k * 3 + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = a[p * 3 + k] as number;
        const aqk = a[q * 3 + k] as number;
        a[p * 3 + k] = c * apk - s * aqk;
        a[q * 3 + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k * 3 + p] as number;
        const vkq = v[k * 3 + q] as number;
        v[k * 3 + p] = c * vkp - s * vkq;
        v[k * 3 + q] = s * vkp + c * vkq;
      }
    }
  }
  return { vectors: v, values: [a[0] as number, a[4] as number, a[8] as number].map((x) => Math.sqrt(Math.max(x, 0))) };
}
