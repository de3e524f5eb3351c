#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so `npx jobwire` works on a
// fresh clone right after `npm install`, with no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
