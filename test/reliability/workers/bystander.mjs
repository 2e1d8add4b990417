#!/usr/bin/env node
// A process that must never be signalled: it appends every catchable signal it gets to the file
// named by argv[2] ("signal SIGTERM") and keeps running; a SIGKILL shows as its death.
import { appendFileSync } from 'node:fs';
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT']) {
  process.on(sig, () => appendFileSync(process.argv[2], `signal ${sig}\n`));
}
appendFileSync(process.argv[2], `ready ${process.pid}\n`);
setInterval(() => {}, 1 << 30);
