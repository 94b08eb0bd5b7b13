/**
 * The verdict's view of outcome counts: the vocabulary (Counts, sums,
 * request / failure rules) is proto/outcomes.ts's, re-exported here so the
 * verdict's modules keep one import.
 */
export { type Counts, addCounts, completed, counts, failuresOf, requestsOf, subCounts, unresolvedStalls, zeroCounts } from "../../proto/outcomes.js";
