import type { Command } from "commander";

/** Registers `originwatch sidecar`. */
export function registerSidecar(program: Command): void {
  program.command("sidecar").description("run a sidecar hop beside a cache (not built yet)");
}
