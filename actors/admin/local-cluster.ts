import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { generatePassword } from '../gateway/password.js';

/** Files of a cluster under CRANE_HOME: sockets, the root password, the state dir, cluster.json. */
export function homeLayout(home: string) {
  return {
    home,
    cliSocket: join(home, 'crane-cli.sock'),
    admSocket: join(home, 'crane-adm.sock'),
    rootPassword: join(home, 'root-password'),
    info: join(home, 'cluster.json'),
    state: join(home, 'state'),
  };
}

export function prepareHome(home: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
}

/** The root password: read from CRANE_HOME, or generated and written (0600) on first start. */
export function rootPassword(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const pw = generatePassword();
  writeFileSync(file, pw + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return pw;
}

/** True if something answers on the admin socket. */
export function socketAnswers(socket: string, timeoutMs = 1_000): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/v1/admin/ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

export function writeInfo(file: string, info: object): void {
  writeFileSync(file, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
}

export function removeQuietly(...files: string[]): void {
  for (const f of files) rmSync(f, { force: true });
}
