/**
 * `sightline` command line. Each sub-command lives in its own file under cli/commands/ and
 * registers itself on the program when it runs (cli/commands/index.ts); this file only wires them
 * together and maps errors to exit codes: 0 ok, 1 runtime failure, 2 usage error (cli/errors.ts).
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './errors.js';

// A reader that closes early (`sightline duplicates --json | head -1`) is not an error: stop quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command();
program
  .name('sightline')
  .description('AlexNet image classification and similar-image search (tfjs training, ONNX export, onnxruntime serving)')
  .version('0.1.0')
  // Commander's own errors (unknown command or option, missing argument) throw a CommanderError
  // instead of exiting, so they get exit code 2 like every other usage error.
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`sightline: ${str.trim()} (see --help)\n`) })
  .addHelpText(
    'after',
    `
Exit codes:
  0  success
  1  the command failed at run time (a file, model or database missing or unreadable, a lock held,
     an image that could not be processed)
  2  usage error: the command line is wrong (unknown command or option, missing argument, a flag
     value of the wrong form or range)

Results go to stdout, logs and progress to stderr. Set SIGHTLINE_DEBUG=1 to print stacks.`,
  );

try {
  await registerCommands(program, process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (err: unknown) {
  if (err instanceof CommanderError) {
    // Already printed by commander (outputError above). Help and --version exit at once with 0, as
    // commander itself would: nothing the command's modules started in the background may run.
    if (err.exitCode === 0) process.exit(0);
    process.exitCode = EXIT_USAGE;
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`sightline: ${message}\n`);
    if (process.env['SIGHTLINE_DEBUG'] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : EXIT_FAILURE;
  }
}
