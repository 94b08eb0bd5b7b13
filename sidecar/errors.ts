/**
 * The sidecar's error vocabulary: one class, stable codes. Anything thrown
 * across a module boundary is a SidecarError; `cause` keeps the original.
 */
export type SidecarErrorCode =
  /** A config field is missing or out of range; the message names the field. */
  | "CONFIG_INVALID"
  /** The config file could not be read or is not JSON. */
  | "CONFIG_UNREADABLE"
  /** A listener could not be bound. */
  | "LISTEN_FAILED"
  /** The stream to the central failed (never surfaces on the request path). */
  | "STREAM_FAILED";

export class SidecarError extends Error {
  override readonly name = "SidecarError";
  constructor(
    readonly code: SidecarErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A config validation error naming the offending field, e.g. `origins[1].url must be an http(s) URL`. */
export function configError(field: string, problem: string): SidecarError {
  return new SidecarError("CONFIG_INVALID", `${field} ${problem}`);
}
