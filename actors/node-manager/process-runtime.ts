import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CraneError } from '../../bus/errors.js';
import type { ImageCheck, LogLine, RunRequest } from '../protocol.js';
import { LineSplitter } from './line-splitter.js';
import { containerEnv, type ContainerRuntime, type RuntimeHooks } from './runtime.js';

interface HostProcess {
  child: ChildProcess;
  closed: Promise<void>;
}

/**
 * Image `host`: the command runs as a host process through `sh -c`, in its own process group.
 * With a `pidDir`, each group's id is kept in `<pidDir>/<container>.pid` while it runs, so a later
 * process of this node can reap what an earlier one left behind.
 */
export class ProcessRuntime implements ContainerRuntime {
  private readonly procs = new Map<string, HostProcess>();

  constructor(
    private readonly node: string,
    private readonly pidDir?: string,
  ) {
    if (pidDir) mkdirSync(pidDir, { recursive: true, mode: 0o700 });
  }

  private pidFile(container: string): string | undefined {
    return this.pidDir && join(this.pidDir, `${container}.pid`);
  }

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
    const pidFile = this.pidFile(req.container);
    if (pidFile) writeFileSync(pidFile, String(child.pid));
    pipe(child.stdout!, 'stdout');
    pipe(child.stderr!, 'stderr');
    const closed = new Promise<void>((resolve) => {
      child.once('close', (code, signal) => {
        this.procs.delete(req.container);
        if (pidFile) rmSync(pidFile, { force: true });
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

  async reapOrphans(): Promise<number> {
    if (!this.pidDir) return 0;
    let reaped = 0;
    for (const file of readdirSync(this.pidDir).filter((f) => f.endsWith('.pid'))) {
      const container = file.slice(0, -'.pid'.length);
      if (this.procs.has(container)) continue;
      const pgid = Number(readFileSync(join(this.pidDir, file), 'utf8'));
      // Only a group that is still this container's (pids are reused): a member carries its id.
      if (pgid > 1 && groupMembers(pgid).some((pid) => environOf(pid).includes(`CRANE_CONTAINER_ID=${container}`))) {
        try {
          process.kill(-pgid, 'SIGKILL');
          reaped++;
        } catch {
          /* gone meanwhile */
        }
      }
      rmSync(join(this.pidDir, file), { force: true });
    }
    return reaped;
  }
}

/** Pids whose process group is `pgid` (from /proc/<pid>/stat). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command: state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      /* exited while we looked */
    }
  }
  return members;
}

function environOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return [];
  }
}
