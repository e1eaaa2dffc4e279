/** Typed errors of the model registry, in the model/ error family (a `kind` and a stable `code`). */
import { ModelError, type ModelErrorKind } from '../errors.js';

export type RegistryErrorCode =
  /** No registry entry has that name. */
  | 'registry_unknown_model'
  /** The entry exists but its file has not been downloaded and imported yet. */
  | 'registry_not_pulled'
  /** The file could not be fetched (offline, unreachable mirror, HTTP error, cut connection). */
  | 'registry_download_failed'
  /** The fetched bytes do not have the registry's size or SHA-256. */
  | 'registry_checksum_mismatch';

// A failed or corrupted download is the source's state, not the caller's mistake: retrying (or
// another mirror) may help, hence unavailable.
const KIND: Record<RegistryErrorCode, ModelErrorKind> = {
  registry_unknown_model: 'invalid_argument',
  registry_not_pulled: 'unavailable',
  registry_download_failed: 'unavailable',
  registry_checksum_mismatch: 'unavailable',
};

export class RegistryError extends ModelError {
  override readonly name = 'RegistryError';
  readonly kind: ModelErrorKind;
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.kind = KIND[code];
  }
}
