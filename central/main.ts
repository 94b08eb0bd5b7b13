import type { Command } from "commander";

/** Registers `originwatch central`. */
export function registerCentral(program: Command): void {
  program.command("central").description("run the central plane (not built yet)");
}
