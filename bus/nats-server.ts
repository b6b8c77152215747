import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { rootLogger } from './logger.js';

export interface EmbeddedNatsOptions {
  /** JetStream storage lives under this directory. */
  stateDir: string;
  /** Client port; 0 picks a free one on first start (and keeps it across restarts). */
  port?: number;
  host?: string;
  /** Extra nats-server arguments (cluster routes, auth, ...). */
  extraArgs?: string[];
  /**
   * A configuration file's text (auth, leaf nodes, JetStream): written to `<stateDir>/nats.conf`
   * (mode 0600: it may hold credentials) and used instead of the default `-js -sd` flags.
   */
  config?: string;
  /** Every line nats-server logs after it is ready (to notice refused leaf connections). */
  onLog?: (line: string) => void;
  logger?: Logger;
}

const LISTEN_RE = /Listening for client connections on [^\s]*?:(\d+)/;

/** Path of the nats-server binary: CRANE_NATS_SERVER, else PATH. Throws a one-line error if absent. */
export function natsServerBinary(): string {
  const bin = process.env.CRANE_NATS_SERVER ?? 'nats-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      `nats-server not found (${bin}): install the Debian package 'nats-server' (apt-get install nats-server) or set CRANE_NATS_SERVER`,
    );
  }
  syncAlways ??= supportsSyncAlways(parseNatsVersion(`${probe.stdout} ${probe.stderr}`));
  return bin;
}

/** `nats-server: v2.9.10` → [2, 9, 10]; undefined for anything else. */
export function parseNatsVersion(text: string): [number, number, number] | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** `sync_interval: always` (fsync every JetStream write before its ack) exists from nats-server 2.10. */
export function supportsSyncAlways(v: [number, number, number] | undefined): boolean {
  return !!v && (v[0] > 2 || (v[0] === 2 && v[1] >= 10));
}

let syncAlways: boolean | undefined;

/**
 * Whether the nats-server in use takes `sync_interval: always`; asked once per process with
 * `nats-server --version`. nats-server 2.9 rejects the field (`unknown field`): there, a write
 * reaches the OS before it is acknowledged and is fsynced within the default 2 minutes.
 */
export function natsSyncAlways(): boolean {
  if (syncAlways === undefined) {
    const probe = spawnSync(process.env.CRANE_NATS_SERVER ?? 'nats-server', ['--version'], { encoding: 'utf8' });
    syncAlways = supportsSyncAlways(parseNatsVersion(`${probe.stdout ?? ''} ${probe.stderr ?? ''}`));
  }
  return syncAlways;
}

/**
 * A supervised nats-server child on loopback. It is restarted with back-off if it dies, on the same
 * port so that clients reconnect by themselves; stop() ends it cleanly (SIGINT: it exits 1 on SIGTERM).
 */
export class EmbeddedNats {
  private child?: ChildProcess;
  private stopping = false;
  private restarts = 0;
  private port: number;
  private readonly host: string;
  private readonly log: Logger;
  private readonly bin: string;

  constructor(private readonly opts: EmbeddedNatsOptions) {
    this.bin = natsServerBinary();
    this.port = opts.port ?? 0;
    this.host = opts.host ?? '127.0.0.1';
    this.log = (opts.logger ?? rootLogger()).child({ actor: 'nats-server' });
  }

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<string> {
    const jsDir = join(this.opts.stateDir, 'jetstream');
    mkdirSync(jsDir, { recursive: true });
    const listen = ['-a', this.host, '-p', String(this.port === 0 ? -1 : this.port)];
    let args = [...listen, '-js', '-sd', jsDir, ...(this.opts.extraArgs ?? [])];
    // JetStream fsyncs every write where the server can (2.10+): that needs a configuration file.
    const config = this.opts.config ?? (natsSyncAlways() ? `jetstream { store_dir: ${JSON.stringify(jsDir)}, sync_interval: always }\n` : undefined);
    if (config !== undefined) {
      const file = join(this.opts.stateDir, 'nats.conf');
      writeFileSync(file, config, { mode: 0o600 });
      args = ['-c', file, ...listen, ...(this.opts.extraArgs ?? [])];
    }
    const child = spawn(this.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s: ${buf.slice(-400)}`)), 10_000);
      const onData = (d: Buffer) => {
        buf += d.toString();
        const m = LISTEN_RE.exec(buf);
        if (m) {
          clearTimeout(timer);
          child.stderr!.off('data', onData);
          const onLog = this.opts.onLog;
          if (onLog) child.stderr!.on('data', (d: Buffer) => d.toString().split('\n').forEach((l) => l && onLog(l)));
          else child.stderr!.resume();
          resolve(Number(m[1]));
        }
      };
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with code ${code} at start: ${buf.trim().split('\n').pop()}`));
      });
    });
    this.port = port;
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    this.log.debug({ url: this.url, pid: child.pid }, 'nats-server ready');
    return this.url;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || child !== this.child) return;
    const delay = Math.min(100 * 2 ** this.restarts, 5_000);
    this.restarts++;
    this.log.warn({ code, signal, delay }, 'nats-server died; restarting');
    setTimeout(() => {
      if (this.stopping) return;
      this.start()
        .then(() => {
          this.restarts = 0;
        })
        .catch((err) => {
          this.log.error({ err: String(err) }, 'nats-server restart failed');
          this.onExit(this.child!, null, null);
        });
    }, delay).unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGINT');
    });
  }
}
