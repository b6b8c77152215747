/**
 * Runs the compiled `crane` / `craneadm` binaries as a user would, against a standalone cluster in
 * its own temporary CRANE_HOME and XDG_CONFIG_HOME (so clusters and sign-ins never mix).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../cli');
export const BIN = { crane: join(cliDir, 'crane.js'), craneadm: join(cliDir, 'craneadm.js') } as const;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a binary to its end; never throws for a non-zero exit. */
export function run(bin: keyof typeof BIN, args: readonly string[], env: NodeJS.ProcessEnv, o: RunOptions = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN[bin], ...args], {
      env: { ...env, ...o.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`${bin} ${args.join(' ')} did not end within ${o.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

export class CliCluster {
  readonly home: string;
  readonly config: string;
  readonly env: NodeJS.ProcessEnv;

  private readonly ownsHome: boolean;

  constructor(home?: string) {
    this.ownsHome = !home;
    this.home = home ?? mkdtempSync(join(tmpdir(), 'crane-e2e-home-'));
    this.config = mkdtempSync(join(tmpdir(), 'crane-e2e-config-'));
    this.env = {
      PATH: process.env.PATH,
      HOME: this.home,
      CRANE_HOME: this.home,
      XDG_CONFIG_HOME: this.config,
      CRANE_LOG_LEVEL: process.env.CRANE_LOG_LEVEL ?? 'info',
    };
  }

  crane(args: readonly string[], o?: RunOptions): Promise<RunResult> {
    return run('crane', args, this.env, o);
  }

  craneadm(args: readonly string[], o?: RunOptions): Promise<RunResult> {
    return run('craneadm', args, this.env, o);
  }

  /** A second user's shell on the same cluster: same CRANE_HOME, own config (own sign-in). */
  otherUser(): CliCluster {
    return new CliCluster(this.home);
  }

  rootPassword(): string {
    return readFileSync(join(this.home, 'root-password'), 'utf8').trim();
  }

  async start(args: readonly string[] = ['--gpus', '4']): Promise<RunResult> {
    const r = await this.craneadm(['standalone', '--detach', ...args]);
    if (r.code !== 0) throw new Error(`standalone did not start: ${r.stderr}`);
    return r;
  }

  /** Signs in (root by default) and returns the result. */
  signin(username = 'root', password = this.rootPassword()): Promise<RunResult> {
    return this.crane(['user', 'signin', '-u', username, '--password-stdin'], { input: password });
  }

  /** Adds a user through craneadm and returns the generated password. */
  async addUser(name: string): Promise<string> {
    const r = await this.craneadm(['user', 'add', name]);
    const m = /^password: (\S+)$/m.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`user add ${name} failed: ${r.stderr}`);
    return m[1]!;
  }

  /** A signed-in shell for a new user: added by this (root's) shell, on the same cluster. */
  async newUser(name: string): Promise<CliCluster> {
    const pw = await this.addUser(name);
    const u = this.otherUser();
    const r = await u.signin(name, pw);
    if (r.code !== 0) throw new Error(`${name} could not sign in: ${r.stderr}`);
    return u;
  }

  standaloneLog(): string {
    try {
      return readFileSync(join(this.home, 'standalone.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async teardown(): Promise<void> {
    if (this.ownsHome) {
      await this.craneadm(['stop']).catch(() => undefined);
      rmSync(this.home, { recursive: true, force: true });
    }
    rmSync(this.config, { recursive: true, force: true });
  }
}
