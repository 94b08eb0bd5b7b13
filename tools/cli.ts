/**
 * The `originwatch` command: one binary, one subcommand per component.
 * Each component registers its own subcommand from its main.ts.
 */
import { Command } from "commander";
import { registerCentral } from "../central/main.js";
import { registerSidecar } from "../sidecar/main.js";
import { registerCtl } from "./ctl/ctl.js";
import { registerDemo } from "./demo/demo.js";
import { registerCerts } from "./certs.js";

const program = new Command();
program
  .name("originwatch")
  .description("Passive origin-health monitoring for CDN edges")
  .showHelpAfterError();

registerCentral(program);
registerSidecar(program);
registerDemo(program);
registerCerts(program);
registerCtl(program);

await program.parseAsync(process.argv);
