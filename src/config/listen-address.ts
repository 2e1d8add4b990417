// `[metrics].listen`: where the daemon serves GET /metrics. Loopback unless the value names another
// address itself: a bare port ("9464") binds 127.0.0.1, "HOST:PORT" binds HOST as written, so that
// exposing the figures beyond the machine always takes an address in the file (e.g.
// "0.0.0.0:9464"). Only IP literals and `localhost` are taken: no name is looked up at start.
import { isIPv4, isIPv6 } from 'node:net';

export interface ListenAddress {
  /** An IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

export const LISTEN_EXPECTED =
  'an address "HOST:PORT" or a port "PORT" (HOST an IPv4 address, [IPv6] or localhost; PORT 1..65535; a bare port listens on 127.0.0.1 only)';

export const LOOPBACK_HOST = '127.0.0.1';

export function parseListenAddress(text: string): ListenAddress | null {
  if (/^\d{1,5}$/.test(text)) return withPort(LOOPBACK_HOST, text);
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text);
  if (v6 !== null) return isIPv6(v6[1]!) ? withPort(v6[1]!, v6[2]!) : null;
  const v4 = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (v4 === null) return null;
  const host = v4[1] === 'localhost' ? LOOPBACK_HOST : v4[1]!;
  return isIPv4(host) ? withPort(host, v4[2]!) : null;
}

/** "127.0.0.1:9464", "[::1]:9464": as a URL's authority writes it. */
export function formatListenAddress(address: ListenAddress): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function withPort(host: string, digits: string): ListenAddress | null {
  const port = Number(digits);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}
