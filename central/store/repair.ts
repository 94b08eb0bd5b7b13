/**
 * A corrupt LevelDB directory, found and repaired. LevelDB reports
 * corruption as LEVEL_CORRUPTION (on open: a garbled CURRENT or MANIFEST; on
 * read: a garbled table block). Both become CENTRAL_DATA_CORRUPT naming the
 * repair command, so a central under `Restart=always` logs what to do instead
 * of looping on "Database failed to open".
 *
 * A directory that holds tables or logs but no CURRENT file is refused the
 * same way: LevelDB would otherwise create a fresh database over it and
 * silently drop every table.
 *
 * repairStore() runs LevelDB's own RepairDB (classic-level's
 * `ClassicLevel.repair`): it rebuilds the MANIFEST from every table and log
 * file it can read; records in unreadable blocks are lost, the rest survive.
 */
import { Level } from "level";
import { readdir } from "node:fs/promises";
import { CentralError } from "../errors.js";

/** The documented command, with the directory filled in. */
export const repairCommand = (dir: string) => `originwatch central repair --data ${dir}`;

export function corruptError(dir: string, detail: string, cause?: unknown): CentralError {
  return new CentralError(
    "CENTRAL_DATA_CORRUPT",
    `data directory ${dir} is corrupt (${detail}). Stop every central using it, copy the directory aside, then run: ${repairCommand(dir)}`,
    { cause },
  );
}

/** A LevelDB corruption error (thrown directly or as the cause of LEVEL_DATABASE_NOT_OPEN). */
export function isCorruption(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return e?.code === "LEVEL_CORRUPTION" || e?.cause?.code === "LEVEL_CORRUPTION";
}

/** The corruption detail of a LevelDB error ("Corruption: bad block type"). */
export function corruptionDetail(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return (e.cause?.code === "LEVEL_CORRUPTION" ? e.cause.message : e.message) ?? String(err);
}

/** Maps a LevelDB corruption error to CENTRAL_DATA_CORRUPT; anything else is returned as is. */
export function asStoreError(err: unknown, dir: string): unknown {
  return isCorruption(err) ? corruptError(dir, corruptionDetail(err), err) : err;
}

/** Refuses a directory with LevelDB tables or logs but no CURRENT file. */
export async function assertNotHeadless(dir: string): Promise<void> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return;
  }
  if (files.includes("CURRENT")) return;
  const data = files.filter((f) => /^(\d+\.(ldb|sst|log)|MANIFEST-\d+)$/.test(f));
  if (data.length > 0) throw corruptError(dir, `CURRENT is missing but ${data.length} table/log file(s) are present`);
}

export interface RepairReport {
  /** The store was corrupt before the repair (false: it opened and read cleanly). */
  wasCorrupt: boolean;
  detail: string;
  /** Entries readable after the repair. */
  entries: number;
}

/**
 * Repairs the directory in place with LevelDB's RepairDB, then opens it and
 * reads every entry to prove it is whole. Refuses (CENTRAL_DATA_LOCKED) while
 * another process holds the directory.
 */
export async function repairStore(dir: string): Promise<RepairReport> {
  const files = await readdir(dir).catch((err: Error) => {
    throw new CentralError("CENTRAL_DATA_UNAVAILABLE", `cannot read data directory ${dir}: ${err.message}`, { cause: err });
  });
  if (!files.includes("CURRENT") && !files.some((f) => /^(\d+\.(ldb|sst|log)|MANIFEST-\d+)$/.test(f))) {
    throw new CentralError("CENTRAL_DATA_UNAVAILABLE", `${dir} holds no LevelDB store to repair`);
  }
  const before = await scan(dir, { createIfMissing: false });
  if (before.locked) throw new CentralError("CENTRAL_DATA_LOCKED", `data directory ${dir} is in use by another process: stop the central first`);
  // `level` is classic-level in Node; its typings omit the static repair().
  await (Level as unknown as { repair(location: string): Promise<void> }).repair(dir);
  const after = await scan(dir, { createIfMissing: false });
  if (after.error) throw corruptError(dir, `still unreadable after repair: ${after.error}`);
  return { wasCorrupt: before.error !== undefined || !files.includes("CURRENT"), detail: before.error ?? "", entries: after.entries };
}

async function scan(dir: string, o: { createIfMissing: boolean }): Promise<{ entries: number; error?: string; locked?: boolean }> {
  const db = new Level<string, string>(dir, { createIfMissing: o.createIfMissing, valueEncoding: "utf8" });
  try {
    await db.open();
    let entries = 0;
    for await (const _ of db.keys()) entries++;
    return { entries };
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === "LEVEL_LOCKED") return { entries: 0, locked: true };
    return { entries: 0, error: corruptionDetail(err) };
  } finally {
    await db.close().catch(() => {});
  }
}
