/**
 * Start-up repair of the files beside the database, after a crash or a full disk: temp files of
 * interrupted writes, and uploaded files whose row was never committed (an upload writes its file
 * first and its row second, so a crash in between leaves a file without a row, never the reverse).
 * Everything removed is reported, for a warn-level log line. In a blob folder shared by replicas,
 * another replica's upload may be between its file and its row right now: `minAgeMs` spares files
 * younger than that.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TMP_SUFFIX } from './storage.js';

export interface ReconcileReport {
  /** Temp files removed (uploads and thumbnails). */
  temps: number;
  /** Uploaded files with no row (their upload failed or crashed before the commit), removed. */
  orphanUploads: number;
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** `hasSha` says whether a row holds these bytes; upload files are named `<sha256>.<ext>`. */
export async function reconcileFiles(blobDir: string, hasSha: (sha: string) => Promise<boolean>, opts: { minAgeMs?: number } = {}): Promise<ReconcileReport> {
  const report: ReconcileReport = { temps: 0, orphanUploads: 0 };
  const minAge = opts.minAgeMs ?? 0;
  const young = async (path: string): Promise<boolean> => minAge > 0 && Date.now() - (await stat(path).then((s) => s.mtimeMs, () => 0)) < minAge;
  for (const sub of ['uploads', 'thumbnails']) {
    const dir = join(blobDir, sub);
    for (const name of await list(dir)) {
      if (await young(join(dir, name))) continue;
      if (name.endsWith(TMP_SUFFIX)) {
        await rm(join(dir, name), { force: true });
        report.temps++;
        continue;
      }
      const sha = /^([0-9a-f]{64})\.[a-z0-9]+$/.exec(name)?.[1];
      if (sub === 'uploads' && sha !== undefined && !(await hasSha(sha))) {
        await rm(join(dir, name), { force: true });
        report.orphanUploads++;
      }
    }
  }
  return report;
}
