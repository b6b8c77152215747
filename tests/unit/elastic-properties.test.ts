/**
 * Properties of the whole policy (queue, reclaim, grow, cargo placement) over random clusters and
 * job streams: a small simulator applies each decision the way the cluster manager does (a
 * cooperative AM gives GPUs back at once) and checks the invariants after every step.
 */
import test from 'ava';
import { planGrow, planReclaim, placeCargo, type ElasticJob } from '../../actors/cluster-manager/elastic.js';
import { planQueue, type QueueEntry } from '../../actors/cluster-manager/fair-share.js';
import { both, gpuCount, minus, plus } from '../../actors/cluster-manager/grant.js';
import type { NodeCapacity } from '../../actors/cluster-manager/scheduler.js';
import type { Grant } from '../../actors/protocol.js';

function rng(seed: number) {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

interface SimJob {
  q: QueueEntry;
  state: 'QUEUED' | 'RUNNING' | 'DONE';
  grant: Grant;
  am: Grant;
  cargos: Array<{ age: number; containers: Array<{ node: string; gpus: number[] }> }>;
}

test('properties: GPUs never given twice, never more than a node has, MIN ≤ held ≤ MAX, cargos inside their grant', (t) => {
  let checks = 0;
  for (let round = 0; round < 150; round++) {
    const r = rng(round + 7);
    const int = (n: number) => Math.floor(r() * n);
    const nodes = Array.from({ length: 1 + int(5) }, (_, i) => ({ name: `n${i}`, total: 1 + int(8) }));
    const users = ['u0', 'u1', 'u2'].slice(0, 1 + int(3));
    const jobs: SimJob[] = [];
    let seq = 0;
    let age = 0;

    const owner = new Map<string, string>();
    const capacities = (): NodeCapacity[] =>
      nodes.map((n) => ({
        name: n.name,
        total: n.total,
        free: Array.from({ length: n.total }, (_, g) => g).filter((g) => !owner.has(`${n.name}/${g}`)),
        docker: true,
        hostJobs: true,
      }));
    const take = (j: SimJob, g: Grant) => {
      for (const [n, gs] of Object.entries(g)) for (const x of gs) {
        t.false(owner.has(`${n}/${x}`), `${n}/${x} given twice`);
        owner.set(`${n}/${x}`, j.q.id);
      }
      j.grant = plus(j.grant, g);
    };
    const give = (j: SimJob, g: Grant) => {
      for (const [n, gs] of Object.entries(g)) for (const x of gs) owner.delete(`${n}/${x}`);
      j.grant = minus(j.grant, g);
      // A cooperative AM: cargos on GPUs given back are stopped.
      j.cargos = j.cargos.filter((c) => c.containers.every((x) => gpuCount(both({ [x.node]: x.gpus }, g)) === 0));
    };
    const held = () => {
      const h: Record<string, number> = {};
      for (const j of jobs) if (j.state === 'RUNNING') h[j.q.user] = (h[j.q.user] ?? 0) + gpuCount(j.grant);
      return h;
    };
    const elastic = (j: SimJob): ElasticJob => ({
      id: j.q.id,
      user: j.q.user,
      priority: j.q.priority,
      seq: j.q.seq,
      resources: j.q.resources,
      image: j.q.image,
      grant: j.grant,
      am: j.am,
      cargoGpus: j.cargos.flatMap((c) => c.containers.flatMap((x) => x.gpus.map((gpu) => ({ node: x.node, gpu, age: c.age })))),
      reclaiming: {},
    });

    for (let step = 0; step < 30; step++) {
      // New jobs, some elastic; some jobs end.
      for (let k = int(3); k > 0; k--) {
        const min = 1 + int(4);
        const app = int(Math.min(min, 2) + 1);
        const max = r() < 0.5 ? min : min + 1 + int(6);
        jobs.push({ q: { id: `j${jobs.length}`, user: users[int(users.length)]!, priority: int(3), seq: ++seq, image: 'host', resources: { app, min, max } }, state: 'QUEUED', grant: {}, am: {}, cargos: [] });
      }
      for (const j of jobs) if (j.state === 'RUNNING' && r() < 0.15) (give(j, j.grant), (j.state = 'DONE'));

      // The queue pass.
      const queued = jobs.filter((j) => j.state === 'QUEUED');
      const plan = planQueue({ queue: queued.map((j) => j.q), nodes: capacities(), held: held(), users: {} });
      for (const p of plan.placements) {
        const j = jobs.find((x) => x.q.id === p.job)!;
        take(j, p.grant);
        j.am = p.am.gpus.length ? { [p.am.node]: p.am.gpus } : {};
        j.state = 'RUNNING';
      }
      const running = () => jobs.filter((j) => j.state === 'RUNNING');

      // Reclaim for the reserved job (the AM gives back at once; a paused job goes back to the queue).
      if (plan.reserved) {
        const h = jobs.find((x) => x.q.id === plan.reserved)!;
        const rec = planReclaim({ nodes: capacities(), jobs: running().map(elastic), held: held(), users: {}, head: h.q });
        if (rec) {
          for (const [id, g] of rec.take) {
            const j = jobs.find((x) => x.q.id === id)!;
            t.true(gpuCount(both(g, j.am)) === 0, 'a shrink never takes the AM\'s GPUs');
            t.true(gpuCount(j.grant) - gpuCount(g) >= j.q.resources.min, 'a shrink keeps MIN');
            give(j, g);
          }
          for (const id of rec.pause) {
            const j = jobs.find((x) => x.q.id === id)!;
            t.is(j.q.user, h.q.user, 'only the same user\'s jobs are paused');
            t.true(j.q.priority < h.q.priority, 'only for a higher priority');
            give(j, j.grant);
            j.state = 'QUEUED';
            j.am = {};
            j.cargos = [];
          }
        }
      } else {
        for (const [id, g] of planGrow({ nodes: capacities(), jobs: running().map(elastic), held: held(), users: {}, queueWaits: false })) {
          take(jobs.find((x) => x.q.id === id)!, g);
        }
      }

      // The AMs start cargos in their free GPUs.
      for (const j of running()) {
        if (r() < 0.5) continue;
        const used = plus(j.am, j.cargos.reduce<Grant>((g, c) => c.containers.reduce((h, x) => plus(h, { [x.node]: x.gpus }), g), {}));
        const free: Grant = {};
        for (const n of Object.keys(j.grant)) free[n] = minus(j.grant, used)[n] ?? [];
        const want = Array.from({ length: 1 + int(3) }, () => ({ gpus: int(3), image: 'host' }));
        const placed = placeCargo(free, want, () => true);
        if (placed) {
          t.is(placed.length, want.length);
          j.cargos.push({ age: ++age, containers: placed });
        }
        if (j.cargos.length > 2 && r() < 0.5) j.cargos.shift();
      }

      // Invariants.
      const seen = new Set<string>();
      for (const j of running()) {
        const n = gpuCount(j.grant);
        t.true(n >= j.q.resources.min && n <= j.q.resources.max, `${j.q.id} holds ${n}, MIN ${j.q.resources.min}, MAX ${j.q.resources.max}`);
        t.is(gpuCount(both(j.am, j.grant)), gpuCount(j.am), 'the AM inside its grant');
        for (const [node, gs] of Object.entries(j.grant)) {
          const total = nodes.find((x) => x.name === node)!.total;
          for (const g of gs) t.true(g < total, `${node}/${g} exists`);
        }
        const containers = [j.am, ...j.cargos.flatMap((c) => c.containers.map((x) => ({ [x.node]: x.gpus })))];
        for (const g of containers) {
          t.is(gpuCount(both(g, j.grant)), gpuCount(g), 'every container inside its job\'s grant');
          for (const [node, gs] of Object.entries(g)) for (const x of gs) {
            t.false(seen.has(`${node}/${x}`), `${node}/${x} runs two containers`);
            seen.add(`${node}/${x}`);
          }
        }
        checks++;
      }
    }
  }
  t.true(checks > 500, `${checks} running-job checks`);
});
