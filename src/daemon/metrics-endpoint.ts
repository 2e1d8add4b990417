// The start-up step behind [metrics].listen: serves GET /metrics where the configuration says, and
// stops serving at shutdown. Nothing when the key is unset.

import { monotonicMs } from '../os/monotonic-clock.js';
import { formatListenAddress, parseListenAddress } from '../config/listen-address.js';
import { MetricsHttpServer } from '../control/metrics-http.js';
import type { Logger } from '../log/logger.js';

/** A scrape this soon after the last one, over HTTP or the socket, gets the same text: a flood of scrapes costs ~1.5 ms of /proc reading and rendering per this, not per request. */
export const RENDER_REUSE_MS = 500;

/** `render` is the daemon's one metrics text, already reused across scrapes (reusing). */
export async function serveMetrics(listen: string | null, render: () => string, logger: Logger): Promise<(() => Promise<void>) | undefined> {
  if (listen === null) return undefined;
  const address = parseListenAddress(listen);
  // Validated with the configuration; reaching this is a bug there.
  if (address === null) throw new Error(`[metrics].listen ${JSON.stringify(listen)} is not an address`);
  let server: MetricsHttpServer;
  try {
    server = await MetricsHttpServer.listen({ ...address, render, onError: (message) => logger.emit({ kind: 'metrics-error', message }) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${formatListenAddress(address)} ([metrics].listen): ${code ?? (err as Error).message}`);
  }
  logger.emit({ kind: 'metrics-listening', address: formatListenAddress({ host: address.host, port: server.port }) });
  return () => server.close();
}

/** `render`, called again only once `reuseMs` have passed since its last result (monotonic clock). */
export function reusing(render: () => string, reuseMs: number, now: () => number = monotonicMs): () => string {
  let text = '';
  let renderedAt = Number.NEGATIVE_INFINITY;
  return () => {
    if (now() - renderedAt >= reuseMs) {
      text = render();
      renderedAt = now();
    }
    return text;
  };
}
