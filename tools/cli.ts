/**
 * The `originwatch` command: one binary, one subcommand per component.
 * Each component registers its own subcommand from its main.ts.
 *
 * Only the subcommand being run is loaded: `originwatch sidecar` never imports
 * the central (LevelDB, connect-node, the verdict engine) nor the demo, which
 * keeps the sidecar's start-up time and idle memory down (`npm run
 * bench:startup`). Help, an unknown word, or no word loads them all so that
 * commander can list every subcommand.
 */
import { Command } from "commander";

type Register = (program: Command) => void;

/** The subcommands, in help order: name → loader of its register function. */
const SUBCOMMANDS: Record<string, () => Promise<Register>> = {
  central: async () => (await import("../central/main.js")).registerCentral,
  sidecar: async () => (await import("../sidecar/cli.js")).registerSidecar,
  demo: async () => (await import("./demo/demo.js")).registerDemo,
  certs: async () => (await import("./certs.js")).registerCerts,
  ctl: async () => (await import("./ctl/ctl.js")).registerCtl,
};

const program = new Command();
program
  .name("originwatch")
  .description("Passive origin-health monitoring for CDN edges")
  .showHelpAfterError();

const word = process.argv[2];
const names = word !== undefined && Object.hasOwn(SUBCOMMANDS, word) ? [word] : Object.keys(SUBCOMMANDS);
for (const register of await Promise.all(names.map((n) => SUBCOMMANDS[n]!()))) register(program);

await program.parseAsync(process.argv);
