// Shared by `start` (the detached daemon) and the systemd unit (service-unit.ts), which must agree.

/**
 * V8 flags for the long-running daemon, measured in BENCHMARKS.md ("Daemon memory"): lite mode
 * drops the optimizing compiler (the daemon computes little) and a 1 MiB semi-space keeps polling
 * garbage from growing the young generation (~48 MiB RSS, flat, instead of ~55 and rising, before #18).
 * Without WebAssembly exposed (the daemon has none), lite mode does not warn at every start.
 * V8's memory reducer runs once the heap has grown past its start-up size, 8 s later by default:
 * after 200 ms, start-up's garbage and the young generation's second semi-space (~2 MiB of RSS)
 * are given back right after the start instead (~44 MiB); the reducer does the same GCs, sooner.
 */
export const DAEMON_NODE_FLAGS = ['--lite-mode', '--no-expose-wasm', '--max-semi-space-size=1', '--gc-memory-reducer-start-delay-ms=200'];
