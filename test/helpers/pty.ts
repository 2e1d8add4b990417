// Runs a program on a real pseudo-terminal (python3's pty module), for what a CLI does only on a
// terminal: escape sequences, progress lines, Ctrl-C. No node-pty needed.
import { spawn, spawnSync } from 'node:child_process';

export const hasPty = (): boolean => spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;
export const PTY_MISSING = 'python3 with the pty module is not available';

/**
 * The driver: forks the program on a pty; for each step (a text, or `N*text` for its Nth time),
 * once the output holds it (after the previous step's; raw bytes, where a newline is \r\n), sends the program SIGINT (as Ctrl-C would); reads to the end. SIGKILL past
 * 60 s. Prints the output as hex, then the exit code (-N: killed by signal N).
 */
const DRIVER = `
import os, pty, signal, sys, time, binascii
steps = [s.encode() for s in sys.argv[1].split('\\x1f') if s]
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b''
mark = 0
deadline = time.time() + 60
def seen(step, mark):
    times, _, text = step.partition(b'*') if step[:1].isdigit() and b'*' in step else (b'1', b'', step)
    at = mark
    for _ in range(int(times)):
        at = out.find(text, at)
        if at == -1:
            return -1
        at += len(text)
    return at
while True:
    if steps and seen(steps[0], mark) != -1:
        mark = seen(steps[0], mark)
        steps.pop(0)
        os.kill(pid, signal.SIGINT)
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(binascii.hexlify(out).decode() + '\\n' + str(os.waitstatus_to_exitcode(status)) + '\\n')
`;

export interface PtyRun {
  /** What the program wrote, with the terminal's \r\n turned back into \n. */
  output: string;
  code: number;
}

/** Runs argv on a pty, pressing Ctrl-C (SIGINT) once the output shows each of `ctrlCAfter` in turn (`N*text`: its Nth time). */
export function runOnPty(argv: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; ctrlCAfter?: string[] }): Promise<PtyRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', DRIVER, (opts.ctrlCAfter ?? []).join('\x1f'), ...argv], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c));
    child.on('error', reject);
    child.on('close', () => {
      const [hex, code] = text.trimEnd().split('\n');
      if (hex === undefined || code === undefined) return reject(new Error(`pty driver printed ${JSON.stringify(text)}`));
      resolve({ output: Buffer.from(hex, 'hex').toString('utf8').replaceAll('\r\n', '\n'), code: Number(code) });
    });
  });
}
