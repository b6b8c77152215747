import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../bus/connect.js';
import { EmbeddedNats } from '../../bus/nats-server.js';

export interface NatsFixture {
  url: string;
  server: EmbeddedNats;
  connect(name?: string): Promise<NatsConnection>;
  teardown(): Promise<void>;
}

/** A real nats-server on a random loopback port, with its own JetStream dir; teardown removes it. */
export async function startNats(): Promise<NatsFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'crane-nats-'));
  const server = new EmbeddedNats({ stateDir: dir });
  const url = await server.start();
  const conns: NatsConnection[] = [];
  return {
    url,
    server,
    async connect(name = 'test') {
      const nc = await connectBus(url, name);
      conns.push(nc);
      return nc;
    },
    async teardown() {
      for (const c of conns) await c.close().catch(() => {});
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
