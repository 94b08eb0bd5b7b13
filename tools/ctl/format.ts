/**
 * Plain-text rendering for `originwatch ctl`: aligned tables, state names with
 * optional colour, times and ratios the way an operator reads them.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { EventKind, FaultScope, IncidentKind, OriginState, type Fault } from "../../proto/gen/originwatch/v1/query_pb.js";

export interface Column {
  title: string;
  /** Right-align (numbers). */
  right?: boolean;
}

const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, "").length;

/** Columns separated by two spaces, the last one never padded. */
export function table(columns: Column[], rows: string[][], indent = ""): string {
  // A loop, not Math.max(...rows): a status of 130,000 origins would overflow the call stack.
  const widths = columns.map((c) => c.title.length);
  for (const r of rows) for (let i = 0; i < columns.length; i++) widths[i] = Math.max(widths[i]!, visible(r[i] ?? ""));
  const line = (cells: string[]) =>
    indent +
    cells
      .map((cell, i) => {
        const pad = " ".repeat(Math.max(0, widths[i]! - visible(cell)));
        if (i === cells.length - 1 && !columns[i]!.right) return cell;
        return columns[i]!.right ? pad + cell : cell + pad;
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join("\n") + "\n";
}

export function stateName(s: OriginState): string {
  return OriginState[s] ?? `STATE_${s}`;
}

const COLOURS: Partial<Record<OriginState, string>> = {
  [OriginState.DOWN]: "31;1",
  [OriginState.DEGRADED]: "33;1",
  [OriginState.HEALTHY]: "32",
  [OriginState.NO_DATA]: "2",
};

export function paintState(s: OriginState, colour: boolean): string {
  const name = stateName(s);
  const c = COLOURS[s];
  return colour && c ? `\x1b[${c}m${name}\x1b[0m` : name;
}

export function scopeName(s: FaultScope): string {
  return (FaultScope[s] ?? String(s)).toLowerCase();
}

export function kindName(k: IncidentKind): string {
  return (IncidentKind[k] ?? String(k)).toLowerCase().replace(/_/g, " ");
}

export function eventKindName(k: EventKind): string {
  return (EventKind[k] ?? String(k)).toLowerCase().replace(/_/g, " ");
}

export function faultText(f: Fault): string {
  return `${scopeName(f.scope)} ${f.key} (${pct(f.failureRatio)} failing)`;
}

export function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)}%`;
}

export function num(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** "2026-11-27 17:40:01Z" */
export function when(ts: Timestamp | undefined): string {
  if (!ts) return "-";
  return new Date(timestampMs(ts)).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

/** "42s ago", "3m ago", "2h ago". */
export function ago(ts: Timestamp | undefined, nowMs = Date.now()): string {
  if (!ts) return "-";
  const s = Math.max(0, Math.round((nowMs - timestampMs(ts)) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
