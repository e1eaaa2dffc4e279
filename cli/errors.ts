/**
 * An error meant for the terminal: its message is printed as is, without a stack.
 *
 * The exit code is the CLI contract (README "Command line"): 2 when the command line itself is
 * wrong (unknown command or option, missing argument, a flag value of the wrong form or range),
 * 1 when a well-formed command failed at run time (a file or database missing, a lock held, an
 * image that cannot be read). Construct with `CliError.usage` or `CliError.failure`, so every
 * throw site says which it is.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  private constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }

  /** The command line is wrong: exit code 2. */
  static usage(message: string): CliError {
    return new CliError(message, 2);
  }

  /** The command line is fine but the work failed: exit code 1. */
  static failure(message: string): CliError {
    return new CliError(message, 1);
  }
}

/** Exit codes of the contract, for main.ts and the tests. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
