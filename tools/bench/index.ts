/**
 * `npm run bench`: runs every `bench:*` script of package.json in turn (one
 * at a time: these machines are small and shared), passing extra arguments
 * through. Each benchmark prints its own ratio against a baseline measured in
 * the same run. `npm run bench -- --only hop` runs the scripts whose name
 * contains "hop".
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../test/proc.js";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : undefined;
const names = Object.keys(pkg.scripts)
  .filter((n) => n.startsWith("bench:") && !n.slice(6).includes(":"))
  .filter((n) => !only || n.includes(only))
  .sort();
if (names.length === 0) {
  process.stderr.write(`no bench:* script${only ? ` matching ${only}` : ""} in package.json\n`);
  process.exit(1);
}
let failed = 0;
for (const name of names) {
  process.stdout.write(`\n=== npm run ${name} ${args.join(" ")}\n`);
  const r = spawnSync("npm", ["run", "--silent", name, ...(args.length ? ["--", ...args] : [])], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`=== ${name} failed (exit ${r.status ?? r.signal})\n`);
  }
}
process.exit(failed ? 1 : 0);
