// Compose script that fails on purpose (compose.test.ts checks the verdict, logs and teardown).
import { onHostOk } from '../helpers/compose-host.js';

export default async function main(): Promise<void> {
  await onHostOk('host1', ['sh', '-c', 'echo host1-was-here-$HOSTNAME; echo host1-was-here >/proc/1/fd/1']);
  throw new Error('composetest_fails: failing on purpose');
}
