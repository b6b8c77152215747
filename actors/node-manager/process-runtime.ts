import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { CraneError } from '../../bus/errors.js';
import type { ImageCheck, LogLine, RunRequest } from '../protocol.js';
import { LineSplitter } from './line-splitter.js';
import { containerEnv, type ContainerRuntime, type RuntimeHooks } from './runtime.js';

interface HostProcess {
  child: ChildProcess;
  closed: Promise<void>;
}

/** Image `host`: the command runs as a host process through `sh -c`, in its own process group. */
export class ProcessRuntime implements ContainerRuntime {
  private readonly procs = new Map<string, HostProcess>();

  constructor(private readonly node: string) {}

  async start(req: RunRequest, hooks: RuntimeHooks): Promise<void> {
    const cmd = req.config.cmd;
    if (!cmd?.trim()) throw new CraneError('invalid', 'a host job needs a command');
    if (this.procs.has(req.container)) throw new CraneError('conflict', `container ${req.container} already runs`);
    const child = spawn('sh', ['-c', cmd], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...containerEnv(req, this.node) },
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new CraneError('unavailable', `cannot start sh on node ${this.node}: ${err.message}`)));
    });
    const pipe = (stream: Readable, src: LogLine['src']) => {
      const splitter = new LineSplitter((line) => hooks.onLine({ t: Date.now(), src, line }));
      stream.on('data', (d: Buffer) => splitter.push(d));
      stream.on('end', () => splitter.end());
    };
    pipe(child.stdout!, 'stdout');
    pipe(child.stderr!, 'stderr');
    const closed = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        this.procs.delete(req.container);
        if (signal) hooks.onExit(128 + (constants.signals[signal] ?? 0), signal);
        else hooks.onExit(code ?? 1);
        resolve();
      });
    });
    this.procs.set(req.container, { child, closed });
  }

  async kill(container: string, force: boolean, graceMs: number): Promise<void> {
    const p = this.procs.get(container);
    if (!p) return;
    const group = (sig: NodeJS.Signals) => {
      try {
        process.kill(-p.child.pid!, sig);
      } catch {
        /* the group is gone */
      }
    };
    if (force) {
      group('SIGKILL');
    } else {
      group('SIGTERM');
      // Kept after the leader exits: group members that ignore SIGTERM still get the SIGKILL.
      setTimeout(() => group('SIGKILL'), graceMs).unref();
    }
    await p.closed;
  }

  async canRun(image: string): Promise<ImageCheck> {
    return image === 'host' ? { ok: true } : { ok: false, reason: `the process runtime only runs image 'host', not '${image}'` };
  }

  running(): string[] {
    return [...this.procs.keys()];
  }
}
