/**
 * The Docker runtime, loaded when a node first needs it. dockerode costs a node-manager process
 * about 0.15 s of CPU to load, and a pseudocluster of 50 nodes starts 50 of them, most of which
 * never run a container: they only ping the engine and look for orphans, which a plain HTTP
 * request on the engine's socket answers.
 */
import { request } from 'node:http';
import type { ImageCheck, RunRequest } from '../protocol.js';
import type { DockerRuntime, DockerRuntimeOptions } from './docker-runtime.js';
import type { ContainerRuntime, RuntimeHooks } from './runtime.js';

/** The engine's unix socket (DOCKER_HOST=unix://..., else the default); undefined for a TCP engine. */
export function engineSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  return host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}

/** GET on the engine's socket: the parsed JSON body, or undefined if the engine did not answer 200. */
function engineGet(socketPath: string, path: string, timeoutMs = 1_000): Promise<unknown> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(undefined);
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(body);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** True if a Docker engine answers a ping within 1 s (without loading dockerode where it can). */
export async function probeDocker(): Promise<boolean> {
  const sock = engineSocket();
  if (sock) return (await engineGet(sock, '/_ping')) !== undefined;
  const { DockerRuntime: D } = await import('./docker-runtime.js');
  return D.probe();
}

export class LazyDockerRuntime implements ContainerRuntime {
  private loaded?: Promise<DockerRuntime>;
  private rt?: DockerRuntime;

  constructor(private readonly opts: DockerRuntimeOptions) {}

  private load(): Promise<DockerRuntime> {
    return (this.loaded ??= import('./docker-runtime.js').then(({ DockerRuntime: D }) => (this.rt = new D(this.opts))));
  }

  async start(req: RunRequest, hooks: RuntimeHooks): Promise<void> {
    return (await this.load()).start(req, hooks);
  }

  async kill(container: string, force: boolean, graceMs: number): Promise<void> {
    if (this.rt) return this.rt.kill(container, force, graceMs);
  }

  async canRun(image: string): Promise<ImageCheck> {
    return (await this.load()).canRun(image);
  }

  running(): string[] {
    return this.rt?.running() ?? [];
  }

  /** Nothing of this node's left behind (the usual case) needs no dockerode. */
  async reapOrphans(): Promise<number> {
    const sock = engineSocket();
    if (!this.opts.owner) return 0;
    if (sock && !this.rt) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`crane.owner=${this.opts.owner}`] }));
      const left = await engineGet(sock, `/containers/json?all=true&filters=${filters}`, 5_000);
      if (Array.isArray(left) && left.length === 0) return 0;
    }
    return (await this.load()).reapOrphans();
  }
}
