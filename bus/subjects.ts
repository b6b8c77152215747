/**
 * Subject names: crane.<cluster>.<component>[.<id>].<verb>. One cluster's traffic never leaks into
 * another's because every subject starts with its cluster name.
 */
export function subjects(cluster: string) {
  const p = `crane.${cluster}`;
  return {
    prefix: p,
    all: `${p}.>`,
    gateway: (verb: string) => `${p}.gateway.${verb}`,
    admin: (verb: string) => `${p}.admin.${verb}`,
    /** A member host's own admin actor (each host of a multi-host cluster has one). */
    hostAdmin: (host: string, verb: string) => `${p}.host.${host}.admin.${verb}`,
    cm: (verb: string) => `${p}.cm.${verb}`,
    node: (name: string, verb: string) => `${p}.node.${name}.${verb}`,
    logstore: (verb: string) => `${p}.logstore.${verb}`,
    log: (job: string, container: string) => `${p}.log.${job}.${container}`,
    logAll: `${p}.log.>`,
    hb: (node: string) => `${p}.hb.${node}`,
    hbAll: `${p}.hb.*`,
    jobEvent: (job: string) => `${p}.evt.job.${job}`,
    jobEvents: `${p}.evt.job.*`,
    /** Reply and stream inboxes live under the cluster's prefix so `crane.>` shows replies too. */
    inbox: `${p}._inbox`,
  };
}

export type Subjects = ReturnType<typeof subjects>;
