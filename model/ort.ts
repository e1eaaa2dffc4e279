/**
 * The one import of onnxruntime-node, which turns off its telemetry before the runtime's
 * environment is created (at the first session, not at import).
 *
 * Why: onnxruntime 1.30 for Linux starts a telemetry client when it creates its environment. That
 * client reads /proc/self/cmdline and matches it with a recursive std::regex on the calling thread,
 * so the stack it needs grows with the command line: `sightline classify` with ~1,200 file
 * arguments died of a stack overflow (segfault) before printing anything, and ~200 did under a
 * 1 MB stack. It also writes a database under ~/.cache/Microsoft and /tmp/.ses. A user who sets
 * ORT_DISABLE_TELEMETRY themselves keeps their value.
 */
process.env['ORT_DISABLE_TELEMETRY'] ??= '1';

export { InferenceSession, listSupportedBackends, Tensor } from 'onnxruntime-node';
