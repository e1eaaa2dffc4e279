/** Typed errors of the model registry, in the model/ error family (stable `code`, HTTP `status`). */
import { ModelError } from '../errors.js';

export type RegistryErrorCode =
  /** No registry entry has that name. */
  | 'registry_unknown_model'
  /** The entry exists but its file has not been downloaded and imported yet. */
  | 'registry_not_pulled'
  /** The file could not be fetched (offline, unreachable mirror, HTTP error, cut connection). */
  | 'registry_download_failed'
  /** The fetched bytes do not have the registry's size or SHA-256. */
  | 'registry_checksum_mismatch';

const STATUS: Record<RegistryErrorCode, number> = {
  registry_unknown_model: 400,
  registry_not_pulled: 503,
  registry_download_failed: 502,
  registry_checksum_mismatch: 502,
};

export class RegistryError extends ModelError {
  override readonly name = 'RegistryError';
  readonly status: number;
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}
