/**
 * `just bench`: runs every benchmark in turn (or those named on the command line), each in its own child process (so one does not
 * disturb the next), echoes its lines, and ends with a summary table: figure, target, baseline
 * measured in the same run, ratio, pass/miss. Exit code 1 only if a benchmark failed to run; a
 * missed target is a figure, not a failure.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DIST, fmt, nowMs } from './lib.js';

const BENCHES = ['ask-vs-raw', 'job-list', 'throughput', 'gang', 'rss', 'pseudocluster', 'compose-cluster', 'scheduler', 'bus-scale'] as const;
type R = Record<string, any>;

function runBench(name: string): Promise<{ result?: R; code: number; ms: number }> {
  return new Promise((res) => {
    const t0 = nowMs();
    // These benches weigh a heap, which needs a collection first.
    const flags = name === 'scheduler' || name === 'bus-scale' ? ['--expose-gc'] : [];
    const child = spawn(process.execPath, [...flags, join(DIST, 'bench', `${name}.js`)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, CRANE_LOG_LEVEL: process.env.CRANE_LOG_LEVEL ?? 'silent' },
    });
    let result: R | undefined;
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        else console.log(line);
      }
    });
    child.on('close', (code) => res({ result, code: code ?? 1, ms: nowMs() - t0 }));
  });
}

interface Row {
  id: string;
  figure: string;
  value: string;
  target: string;
  baseline: string;
  ratio: string;
  verdict: string;
}

function rows(name: string, r: R): Row[] {
  const pass = (ok: boolean) => (ok ? 'pass' : 'MISS');
  switch (name) {
    case 'ask-vs-raw':
      return [
        {
          id: 'a',
          figure: 'actor ask round trip (p50)',
          value: `${fmt(r.actorP50Us)} µs`,
          target: '≤ 1.30× raw',
          baseline: `raw NATS req/reply + msgpack ${fmt(r.rawP50Us)} µs`,
          ratio: `${r.ratioP50.toFixed(2)}×`,
          verdict: pass(r.ratioP50 <= 1.3),
        },
      ];
    case 'job-list':
      return [
        {
          id: 'b',
          figure: `crane job list -a, ${fmt(r.jobs)} jobs (median)`,
          value: `${fmt(r.listAllMs)} ms`,
          target: `≤ ${r.target} ms`,
          baseline: `node -e 0 ${fmt(r.nodeMs)} ms`,
          ratio: `${(r.listAllMs / r.nodeMs).toFixed(2)}×`,
          verdict: pass(r.listAllMs <= r.target),
        },
      ];
    case 'throughput':
      return [
        {
          id: 'c',
          figure: `${r.jobs} host jobs \`true\`, submit → all DONE`,
          value: `${fmt(r.rate, 1)} jobs/s`,
          target: `≥ ${r.target} jobs/s`,
          baseline: `bare sh -c true spawns ${fmt(r.baseRate)}/s`,
          ratio: `${(r.rate / r.baseRate).toFixed(2)}×`,
          verdict: pass(r.rate >= r.target),
        },
      ];
    case 'gang':
      return [
        {
          id: 'd',
          figure: `${r.jobs} jobs × ${r.perJob} GPUs sleep 1 on ${r.gpus} GPUs, makespan`,
          value: `${fmt(r.makespanMs / 1000, 2)} s`,
          target: `≤ ${fmt(r.target / 1000, 1)} s`,
          baseline: `ideal ${fmt(r.idealMs / 1000)} s (bare spawns ${fmt(r.baseMs / 1000, 2)} s)`,
          ratio: `${(r.makespanMs / r.idealMs).toFixed(2)}×`,
          verdict: pass(r.makespanMs <= r.target),
        },
      ];
    case 'rss':
      return [
        {
          id: 'e',
          figure: 'RSS idle standalone (node + nats-server)',
          value: `${fmt(r.idleSumKiB / 1024, 1)} MiB`,
          target: '—',
          baseline: `bare node ${fmt(r.baseKiB / 1024, 1)} MiB`,
          ratio: `${(r.idleSumKiB / r.baseKiB).toFixed(2)}×`,
          verdict: 'n/a',
        },
        {
          id: 'e',
          figure: `RSS with ${fmt(r.jobs)} finished jobs`,
          value: `${fmt(r.loadedSumKiB / 1024, 1)} MiB`,
          target: '—',
          baseline: `bare node ${fmt(r.baseKiB / 1024, 1)} MiB`,
          ratio: `${(r.loadedSumKiB / r.baseKiB).toFixed(2)}×`,
          verdict: 'n/a',
        },
      ];
    case 'pseudocluster': {
      const out: Row[] = r.starts.map((s: R) => {
        const targeted = s.nodes === r.targetNodes;
        const ok = s.outcome === 'ready';
        return {
          id: 'f',
          figure: `pseudocluster start → ready, ${s.nodes} nodes × ${r.gpusPerNode} GPUs`,
          value: ok ? `${fmt(s.ms / 1000, 2)} s, ${fmt(s.rssKiB / 1024)} MiB` : `${s.outcome} (${fmt(s.ms / 1000, 1)} s)`,
          target: targeted ? `≤ ${fmt(r.targetMs / 1000)} s` : '—',
          baseline: `${s.nodes} bare node ${fmt(s.baseMs / 1000, 2)} s, ${fmt(s.baseRssKiB / 1024)} MiB`,
          ratio: ok ? `${(s.ms / s.baseMs).toFixed(2)}×` : '—',
          verdict: targeted ? pass(ok && s.ms <= r.targetMs) : 'n/a',
        };
      });
      const sa = r.latency.standalone;
      const pc = r.latency.pseudocluster;
      out.push(
        {
          id: 'g',
          figure: 'job add → RUNNING p50 (p99), standalone 8 GPUs',
          value: `${fmt(sa.p50, 1)} ms (${fmt(sa.p99, 1)})`,
          target: '—',
          baseline: '—',
          ratio: '—',
          verdict: 'n/a',
        },
        {
          id: 'g',
          figure: `job add → RUNNING p50 (p99), pseudocluster ${pc.nodes} × ${pc.gpusPerNode}`,
          value: `${fmt(pc.p50, 1)} ms (${fmt(pc.p99, 1)})`,
          target: '—',
          baseline: `standalone ${fmt(sa.p50, 1)} ms (${fmt(sa.p99, 1)})`,
          ratio: `${(pc.p50 / sa.p50).toFixed(2)}×`,
          verdict: 'n/a',
        },
      );
      return out;
    }
    case 'compose-cluster': {
      const sa = r.standalone;
      const cc = r.compose;
      return [
        {
          id: 'j',
          figure: `job add → RUNNING p50 (p99), 3-host compose cluster, ${cc.jobs} jobs on other hosts`,
          value: `${fmt(cc.p50, 1)} ms (${fmt(cc.p99, 1)})`,
          target: '—',
          baseline: `standalone ${fmt(sa.p50, 1)} ms (${fmt(sa.p99, 1)}), ${sa.jobs} jobs`,
          ratio: `${(cc.p50 / sa.p50).toFixed(2)}×`,
          verdict: 'n/a',
        },
        {
          id: 'j',
          figure: 'job add → first output line p50 (p99), same jobs',
          value: `${fmt(cc.outputP50, 1)} ms (${fmt(cc.outputP99, 1)})`,
          target: '—',
          baseline: `standalone ${fmt(sa.outputP50, 1)} ms (${fmt(sa.outputP99, 1)})`,
          ratio: `${(cc.outputP50 / sa.outputP50).toFixed(2)}×`,
          verdict: 'n/a',
        },
      ];
    }
    case 'scheduler':
      return r.runs.map((x: R) => ({
        id: 'h',
        figure: `scheduler pass (queue + elastic), ${fmt(x.nodes)} nodes: first (${fmt(r.jobs)} queued) / steady p50 (p99)`,
        value: `${fmt(x.first.ms, 1)} / ${fmt(x.steadyPassMs, 2)} (${fmt(x.p99PassMs, 1)}) ms`,
        target: '—',
        baseline: `FIFO first-fit ${fmt(x.first.fifoMs, 1)} / ${fmt(x.fifoSteadyMs, 2)} ms`,
        ratio: `${(x.first.ms / x.first.fifoMs).toFixed(2)}× / ${(x.fifoSteadyPassMs / x.fifoSteadyMs).toFixed(2)}×`,
        verdict: x.queuedSeconds ? `util ${(x.utilisation * 100).toFixed(1)} %, free ${(x.freeWhileQueued * 100).toFixed(1)} %` : 'never saturated',
      }));
    case 'bus-scale': {
      const rate = (v: number, what: string): Row => ({
        id: 'i',
        figure: what,
        value: `${fmt(v)}/s`,
        target: '≥ 2,000/s',
        baseline: `${fmt(r.rtRate)} round trips/s (64 in flight)`,
        ratio: `${(v / r.rtRate).toFixed(2)}×`,
        verdict: pass(v >= 2000),
      });
      const latency = (p50: number, p99: number, what: string): Row => ({
        id: 'i',
        figure: what,
        value: `${fmt(p50, 1)} ms (${fmt(p99, 1)})`,
        target: '—',
        baseline: `round trip ${fmt(r.rtP50, 2)} ms`,
        ratio: `${(p50 / r.rtP50).toFixed(1)}×`,
        verdict: 'n/a',
      });
      return [
        rate(r.burstRate, `placements/s, ${fmt(r.burst)} queued jobs released at once, ${fmt(r.nodes)} sim. nodes × ${r.gpus}`),
        rate(r.placeRate, `placements/s, one client adding (64 in flight) until the cluster is full`),
        latency(r.lightP50, r.lightP99, `job add → RUNNING p50 (p99), one at a time, idle cluster`),
        latency(r.latencyP50, r.latencyP99, `job add → RUNNING p50 (p99), 64 adds in flight, until full`),
        {
          id: 'i',
          figure: `GPU utilisation while saturated (grown GPUs count)`,
          value: `${(r.utilisation * 100).toFixed(1)} %`,
          target: '≥ 95 %',
          baseline: `jobs' MIN GPUs ${(r.minHeld * 100).toFixed(1)} %`,
          ratio: `${(r.utilisation / r.minHeld).toFixed(2)}×`,
          verdict: pass(r.utilisation >= 0.95),
        },
        {
          id: 'i',
          figure: `free GPUs no queued job could use, while saturated`,
          value: `${(r.free * 100).toFixed(1)} %`,
          target: '—',
          baseline: '—',
          ratio: '—',
          verdict: 'n/a',
        },
        {
          id: 'i',
          figure: `cluster manager RSS with ${fmt(r.jobs)} jobs`,
          value: `${fmt(r.rssMiB)} MiB`,
          target: '—',
          baseline: `same, nodes and no job ${fmt(r.rssBaseMiB)} MiB`,
          ratio: `${(r.rssMiB / r.rssBaseMiB).toFixed(2)}×`,
          verdict: 'n/a',
        },
      ];
    }
    default:
      return [];
  }
}

const t0 = nowMs();
const table: Row[] = [];
let failed = 0;
// `node dist/bench/run-all.js scheduler bus-scale` runs only those.
const only = process.argv.slice(2);
for (const name of BENCHES.filter((b) => only.length === 0 || only.includes(b))) {
  console.log(`\n=== ${name} ===`);
  const r = await runBench(name);
  if (r.code !== 0 || !r.result) {
    failed++;
    console.log(`${name}: FAILED (exit ${r.code})`);
    table.push({ id: '?', figure: name, value: 'failed', target: '', baseline: '', ratio: '', verdict: 'FAIL' });
    continue;
  }
  console.log(`(${name}: ${fmt(r.ms / 1000, 1)} s)`);
  table.push(...rows(name, r.result));
}

const head: Row = { id: '', figure: 'figure', value: 'value', target: 'target', baseline: 'baseline (same run)', ratio: 'ratio', verdict: 'verdict' };
const cols = Object.keys(head) as (keyof Row)[];
const width = Object.fromEntries(cols.map((k) => [k, Math.max(...[head, ...table].map((r) => [...r[k]].length))])) as Record<keyof Row, number>;
const line = (r: Row) => cols.map((k) => r[k] + ' '.repeat(width[k] - [...r[k]].length)).join('  ').trimEnd();
console.log(`\n=== summary (${fmt((nowMs() - t0) / 1000, 0)} s, node ${process.version}, ${(await import('node:os')).cpus().length} cores) ===`);
console.log(line(head));
console.log(cols.map((k) => '-'.repeat(width[k])).join('  '));
for (const r of table) console.log(line(r));
console.log('ratio = value ÷ baseline (d: ÷ the ideal 25 s; f: time ratio; g, i, j: p50 ratio; h: pass ÷ FIFO pass); every baseline was measured in this run, on this machine');
process.exit(failed ? 1 : 0);
