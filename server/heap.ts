/**
 * How far V8 lets the JS heap grow between full garbage collections, for a long-running server.
 *
 * Why: after each full GC V8 sets the next old-generation limit from how fast it marks against how
 * fast the program allocates. It times only the main thread's share of marking, not the concurrent
 * marking on its helper threads, so on the server it finds marking almost free (speed ratio ~1000
 * with `--trace-gc-verbose`) and grows the limit by its minimum (factor 1.1, at least ~24 MB). That
 * slack is smaller than the young generation, so incremental marking starts again right after every
 * full GC: on the bundled-model server bench (32 clients, 2 cores) about 1.3 full GCs per second and
 * 7.0 % of all CPU samples (perf) in V8's collector, taken from onnxruntime's share. With a fixed
 * factor of 2 (`--heap-growing-percent=100`) the collector's share was 0.6 % and onnxruntime's rose
 * from 73.4 % to 80.1 %. The cost: between full GCs the heap may reach twice its live size.
 */
import { setFlagsFromString } from 'node:v8';

/** Sets V8's heap growing factor to 1 + percent/100 for this process (all its isolates); 0 leaves V8's own. */
export function setHeapGrowing(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new RangeError(`'heapGrowingPercent' must be an integer in 0..1000, got ${String(percent)}`);
  }
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
