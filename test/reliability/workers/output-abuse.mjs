#!/usr/bin/env node
// A worker that abuses its stdout, for the output-abuse case. Phases, in order:
//   flood:  lines of 1 KiB at up to RATE MB/s for SECONDS s (blocking writes: a slow reader slows it)
//   long:   one line of LONG_MB MB without a newline until its very end
//   binary: BINARY_MB MB of random bytes (NULs, invalid UTF-8, no newlines to speak of)
//   closed: closes stdout and keeps running, writing a line to stderr every 100 ms
// Each phase's figures go as a JSON line to the file named by argv[2]; then it idles.
// Usage: output-abuse.mjs <result-file> <seconds> <rate-MB/s> <long-MB> <binary-MB>
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, writeSync } from 'node:fs';

const [resultFile, secondsArg, rateArg, longArg, binaryArg] = process.argv.slice(2);
const MB = 1_000_000;
const report = (o) => appendFileSync(resultFile, `${JSON.stringify(o)}\n`);
const writeAll = (buf) => {
  let off = 0;
  while (off < buf.length) off += writeSync(1, buf, off);
};

// flood
const line = Buffer.alloc(1024, 0x6c);
line[1023] = 10;
const block = Buffer.concat(Array.from({ length: 256 }, () => line)); // 256 KiB
const rate = Number(rateArg) * MB;
const seconds = Number(secondsArg);
let written = 0;
const t0 = performance.now();
for (;;) {
  const elapsed = (performance.now() - t0) / 1000;
  if (elapsed >= seconds) break;
  if (written > rate * elapsed) {
    const until = performance.now() + 1;
    while (performance.now() < until); // a busy ms: timers are too coarse at this rate
    continue;
  }
  writeAll(block);
  written += block.length;
}
const floodSecs = (performance.now() - t0) / 1000;
report({ phase: 'flood', bytes: written, seconds: floodSecs, mb_s: written / MB / floodSecs });

// long line
const chunk = Buffer.alloc(MB, 0x78);
const t1 = performance.now();
for (let i = 0; i < Number(longArg); i++) writeAll(chunk);
writeAll(Buffer.from('\n'));
report({ phase: 'long', bytes: Number(longArg) * MB, seconds: (performance.now() - t1) / 1000 });

// binary
const random = randomBytes(MB);
const t2 = performance.now();
for (let i = 0; i < Number(binaryArg); i++) writeAll(random);
report({ phase: 'binary', bytes: Number(binaryArg) * MB, seconds: (performance.now() - t2) / 1000 });

// closed stdout
closeSync(1);
report({ phase: 'closed' });
let n = 0;
setInterval(() => process.stderr.write(`still here ${++n}\n`), 100);
