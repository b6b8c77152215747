import { pino, type Logger } from 'pino';

let root: Logger | undefined;

/** The process-wide root logger: structured JSON, pretty on a terminal, level from CRANE_LOG_LEVEL. */
export function rootLogger(): Logger {
  if (root) return root;
  const level = process.env.CRANE_LOG_LEVEL ?? 'info';
  const pretty = process.stderr.isTTY && process.env.CRANE_LOG_FORMAT !== 'json';
  root = pino(
    { level, base: { pid: process.pid } },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l' } })
      : pino.destination({ dest: 2, sync: false }),
  );
  return root;
}

/** One logger per actor, named after it. */
export function actorLogger(actor: string): Logger {
  return rootLogger().child({ actor });
}
