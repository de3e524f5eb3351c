/**
 * Child process for the multi-process SQLite test:
 *   tsx test/helpers/drain-process.ts <database-url> <queue> <workerId>
 * Waits for "go" on stdin so that all processes start claiming together, then
 * prints the JSON list of claimed job ids on stdout.
 */
import { once } from "node:events";
import { JobService } from "../../src/jobs/job-service.ts";
import { openStore } from "../../src/store/open-store.ts";
import { drainQueue } from "./drain.ts";

const [url, queue, workerId] = process.argv.slice(2);
if (!url || !queue || !workerId) throw new Error("usage: drain-process.ts <url> <queue> <workerId>");
const store = await openStore(url, { migrate: false });
process.stdout.write("ready\n");
await once(process.stdin, "data");
const claimed = await drainQueue(new JobService(store), queue, workerId);
await store.close();
process.stdout.write(`${JSON.stringify(claimed)}\n`);
