/**
 * The error type of the data layer.
 *
 * @module
 */

/**
 * A problem with input data the user can fix: a missing, truncated or corrupted file, an unknown
 * image format, a failed download. The message is complete on its own (it names the file and what
 * was expected), so front ends print `error.message` without a stack trace.
 */
export class DataError extends Error {
  /** Creates the error; `cause` keeps the underlying failure for debugging. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataError";
  }
}

/**
 * The message of any thrown value with its chain of causes, for embedding in a sentence: runtime
 * errors such as fetch's "fetch failed" keep the useful part (DNS, refused connection) in `cause`.
 */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const text = current instanceof Error ? current.message : String(current);
    if (text && !parts.includes(text)) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(": ");
}
