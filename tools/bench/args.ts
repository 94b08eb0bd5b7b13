/** `--name N` from the command line as a number, or `dflt` (benchmarks' one way to read their knobs). */
export function numArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number, got ${JSON.stringify(process.argv[i + 1])}`);
  return v;
}
