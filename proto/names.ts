/**
 * The shapes of names both ends agree on: node ids, ISP and region labels, and
 * origin host names. The central refuses a Hello or Batch that breaks them; the
 * sidecar checks its own options against the same rules at start-up, so a bad
 * label is a clear start-up error instead of a stream refused forever.
 */

/** node_id, isp, region: 1–128 characters, starting with a letter or digit. */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** Origin names (host names, optionally host:port): 1–253 characters. */
export const ORIGIN_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;

/** Why `value` is not a valid label, or undefined when it is. */
export function labelProblem(field: string, value: string): string | undefined {
  if (LABEL_PATTERN.test(value)) return undefined;
  return `${field} must match ${LABEL_PATTERN.source} (letters, digits, '.', '_', ':', '-'; at most 128), got ${JSON.stringify(value.slice(0, 64))}`;
}

/** Why `value` is not a valid origin name, or undefined when it is. */
export function originProblem(field: string, value: string): string | undefined {
  if (ORIGIN_PATTERN.test(value)) return undefined;
  return `${field} must be a host name (letters, digits, '.', '_', ':', '-'; at most 253), got ${JSON.stringify(value.slice(0, 64))}`;
}
