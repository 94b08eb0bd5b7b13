/**
 * The central's error vocabulary: stable codes for operators and logs, each
 * mapped once to a gRPC/Connect status at the RPC boundary.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export type CentralErrorCode =
  | "CENTRAL_BAD_CONFIG"
  | "CENTRAL_PORT_IN_USE"
  | "CENTRAL_DATA_LOCKED"
  | "CENTRAL_DATA_UNAVAILABLE"
  | "CENTRAL_HELLO_REQUIRED"
  | "CENTRAL_BAD_MESSAGE"
  | "CENTRAL_NOT_FOUND"
  | "CENTRAL_CONFIG_INVALID"
  | "CENTRAL_CONFIG_CONFLICT"
  /** Refused to start: a non-loopback listen address without mTLS and tokens, and no --insecure. */
  | "CENTRAL_INSECURE"
  /** Refused to start: the LevelDB directory is corrupt; `originwatch central repair --data DIR` repairs it. */
  | "CENTRAL_DATA_CORRUPT"
  /** A request whose Host/:authority is not loopback (or allowed) on a tokenless central: DNS rebinding. */
  | "CENTRAL_HOST_NOT_ALLOWED"
  /** Over a server-wide stream cap (Health.Watch, reflection). */
  | "CENTRAL_TOO_MANY_STREAMS"
  | "CENTRAL_NODE_CONNECTED"
  // Ingest refusals (issue 10): over a cap, or a batch refused for good (BatchReject.code).
  | "CENTRAL_NODE_LIMIT"
  | "CENTRAL_ORIGIN_LIMIT"
  | "CENTRAL_ORIGIN_NOT_DECLARED"
  | "CENTRAL_BATCH_TOO_LARGE"
  | "CENTRAL_WINDOW_SKEW"
  | "CENTRAL_IMPLAUSIBLE_COUNT"
  | "CENTRAL_BAD_BATCH"
  | "CENTRAL_PROBE_REFUSED"
  // Cluster mode (issue 16, central/cluster/).
  /** NATS JetStream did not confirm a write (no PubAck, no quorum) in time: transient, the sidecar replays. */
  | "CENTRAL_NATS_UNAVAILABLE"
  /** A partition owner's write was refused: another worker has claimed the partition since; stop owning it. */
  | "CENTRAL_PARTITION_FENCED";

const codeToStatus: Record<CentralErrorCode, Code> = {
  CENTRAL_BAD_CONFIG: Code.InvalidArgument,
  CENTRAL_PORT_IN_USE: Code.Unavailable,
  CENTRAL_DATA_LOCKED: Code.Unavailable,
  CENTRAL_DATA_UNAVAILABLE: Code.Unavailable,
  CENTRAL_HELLO_REQUIRED: Code.FailedPrecondition,
  CENTRAL_BAD_MESSAGE: Code.InvalidArgument,
  CENTRAL_NOT_FOUND: Code.NotFound,
  CENTRAL_CONFIG_INVALID: Code.InvalidArgument,
  CENTRAL_CONFIG_CONFLICT: Code.FailedPrecondition,
  CENTRAL_INSECURE: Code.FailedPrecondition,
  CENTRAL_DATA_CORRUPT: Code.DataLoss,
  CENTRAL_HOST_NOT_ALLOWED: Code.PermissionDenied,
  CENTRAL_TOO_MANY_STREAMS: Code.ResourceExhausted,
  CENTRAL_NODE_CONNECTED: Code.FailedPrecondition,
  CENTRAL_NODE_LIMIT: Code.ResourceExhausted,
  CENTRAL_ORIGIN_LIMIT: Code.ResourceExhausted,
  CENTRAL_ORIGIN_NOT_DECLARED: Code.InvalidArgument,
  CENTRAL_BATCH_TOO_LARGE: Code.ResourceExhausted,
  CENTRAL_WINDOW_SKEW: Code.InvalidArgument,
  CENTRAL_IMPLAUSIBLE_COUNT: Code.InvalidArgument,
  CENTRAL_BAD_BATCH: Code.InvalidArgument,
  CENTRAL_PROBE_REFUSED: Code.InvalidArgument,
  CENTRAL_NATS_UNAVAILABLE: Code.Unavailable,
  CENTRAL_PARTITION_FENCED: Code.Aborted,
};

/**
 * Exit codes of `originwatch central` for start-up refusals that a restart
 * cannot fix (sysexits: 65 EX_DATAERR, 78 EX_CONFIG), so a unit with
 * `RestartPreventExitStatus=65 78` stops instead of looping. Anything else exits 1.
 */
export const START_EXIT_CODES: Partial<Record<CentralErrorCode, number>> = {
  CENTRAL_DATA_CORRUPT: 65,
  CENTRAL_INSECURE: 78,
};

export class CentralError extends Error {
  constructor(
    readonly code: CentralErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CentralError";
  }

  /** The status a client sees: the code's status, the message a person can act on. */
  toConnectError(): ConnectError {
    return new ConnectError(`${this.message} [${this.code}]`, codeToStatus[this.code], undefined, undefined, this);
  }
}

/** Convert anything thrown inside a handler to a ConnectError, keeping the cause. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof CentralError) return err.toConnectError();
  return ConnectError.from(err);
}
