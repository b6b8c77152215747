#!/usr/bin/env node
/**
 * `crane-admind` (also `craneadm daemon`): this host's member of a multi-host cluster, in the
 * foreground. `craneadm init` / `join` write the member file and start it in the background;
 * started by hand (or by systemd) it rejoins the cluster its member file names.
 */
import { main, out } from './app.js';
import { memberStateDir, runDir } from './paths.js';

main(async () => {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    out('Usage: crane-admind\n\nRuns this host\'s part of the cluster named by $CRANE_STATE_DIR/member.json (default\n/var/lib/crane) and serves $CRANE_RUN_DIR/crane-{cli,adm}.sock (default /var/run/crane).\nStart a cluster with `craneadm init`, join one with `craneadm join TOKEN HOST:PORT`.');
    return 0;
  }
  const { runMember } = await import('../actors/admin/member-host.js');
  const h = await runMember({ runDir: runDir(), stateDir: memberStateDir() });
  out(`crane-admind ready: ${h.info.role} ${h.info.node} of cluster ${h.info.cluster} (pid ${process.pid})`);
  await h.stopped;
  return 0;
});
