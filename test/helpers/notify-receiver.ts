// A notify socket for tests: test/fixtures/notify-receiver.py binds it (Node cannot bind an AF_UNIX
// datagram socket) and reports each datagram with the sender's pid as the kernel saw it.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES } from './daemon.js';
import { waitFor } from './wait.js';

export interface NotifyDatagram {
  pid: number | null;
  uid: number | null;
  message: string;
}

export class NotifyReceiver {
  readonly datagrams: NotifyDatagram[] = [];
  private listening = false;
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(readonly address: string, private readonly child: ChildProcess) {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString('utf8')).split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        const record = JSON.parse(line) as NotifyDatagram | { listening: string };
        if ('listening' in record) this.listening = true;
        else this.datagrams.push(record);
      }
    });
    child.stderr!.on('data', (c: Buffer) => { this.stderr += c.toString('utf8'); });
    this.exited = new Promise((resolve) => child.on('close', () => resolve()));
  }

  /** Binds `address` (a path, or `@name`); ended after the test. */
  static async start(t: { after(fn: () => Promise<void>): void }, address: string): Promise<NotifyReceiver> {
    const child = spawn('python3', [join(FIXTURES, 'notify-receiver.py'), address], { stdio: ['pipe', 'pipe', 'pipe'] });
    const receiver = new NotifyReceiver(address, child);
    t.after(() => receiver.close());
    await waitFor(() => `the notify receiver to bind ${address}; its stderr: ${receiver.stderr}`, () => {
      if (child.exitCode !== null) throw new Error(`the notify receiver exited ${child.exitCode}: ${receiver.stderr}`);
      return receiver.listening;
    }, 30_000);
    return receiver;
  }

  /** Every datagram's assignments, in order: `READY=1`, `STATUS=...`. */
  assignments(): { pid: number | null; line: string }[] {
    return this.datagrams.flatMap((d) => d.message.split('\n').filter((l) => l !== '').map((line) => ({ pid: d.pid, line })));
  }

  /** The first datagram from index `from` on for which `match` holds. */
  waitFor(what: string, match: (d: NotifyDatagram) => boolean, from = 0, timeoutMs = 20_000): Promise<NotifyDatagram> {
    return waitFor(() => `${what} at ${this.address}; received so far: ${JSON.stringify(this.datagrams)}`, () => this.datagrams.slice(from).find(match), timeoutMs);
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin!.end();
      this.child.kill('SIGTERM');
    }
    await this.exited;
  }
}
