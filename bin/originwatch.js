#!/usr/bin/env node
// Entry point of `npx originwatch <command>`: loads the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
await import("../tools/cli.ts");
