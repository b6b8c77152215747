/**
 * Wire types shared by the components. Bodies are msgpack on the bus and JSON at the sockets;
 * docs/protocol.md lists which subject carries which type and who answers.
 */

export const CRANE_VERSION = '0.1.0';

export type JobState = 'QUEUED' | 'RUNNING' | 'PAUSED' | 'ERROR' | 'INVALID' | 'DONE';
export const ACTIVE_STATES: readonly JobState[] = ['QUEUED', 'RUNNING', 'PAUSED'];
export const TERMINAL_STATES: readonly JobState[] = ['ERROR', 'INVALID', 'DONE'];

/** `APP[:MIN[:MAX]]` GPU counts (reference §9.1). */
export interface ResourceSpec {
  app: number;
  min: number;
  max: number;
}

export interface Mount {
  hostDir: string;
  containerDir: string;
  mode: string;
}

/** How to run one container (the AM, or a cargo container). Image `host` = a host process. */
export interface ContainerConfig {
  image: string;
  cmd?: string;
  /** Run cmd through `sh -c` (host processes always do). */
  shell: boolean;
  /** Run an init process (docker only). */
  init: boolean;
  env: Record<string, string>;
  mounts: Mount[];
  ports: number[];
  /** /dev/shm size in bytes (docker only). */
  shmSize: number;
}

export interface JobSpec {
  name?: string;
  tags: string[];
  resources: ResourceSpec;
  /** Order among the same user's queued jobs: higher first (default 0). */
  priority?: number;
  am: ContainerConfig;
}

/** node name -> GPU indices. */
export type Grant = Record<string, number[]>;

export interface StateChange {
  state: JobState;
  /** ISO-8601 UTC. */
  at: string;
  reason?: string;
}

export type ContainerState = 'STARTING' | 'RUNNING' | 'DONE' | 'ERROR';

/** One container of a cargo, as the AM asks for it: its GPUs (on one node) and how to run it. */
export interface CargoContainerSpec {
  /** Unique in the cargo (default: its index). */
  name?: string;
  gpus: number;
  config: ContainerConfig;
}

/** `POST /v1/jobs/{id}/cargos`: a gang of containers started all or nothing in the job's grant. */
export interface CargoSpec {
  /** Unique among the job's cargos (default: cargo-N). */
  name?: string;
  containers: CargoContainerSpec[];
}

/** `POST /v1/jobs/{id}/cargos/{name}/resize`: containers added and removed; the others keep running. */
export interface CargoResize {
  /** New containers; gpus and config left out are the cargo's first container's. */
  add?: CargoContainerSpec[];
  /** Container names. */
  remove?: string[];
}

export interface CargoContainerView {
  name: string;
  /** The container's id on its node (log lines carry it). */
  id: string;
  node: string;
  gpus: number[];
  image: string;
  state: ContainerState;
  exitCode?: number;
  reason?: string;
  startedAt?: string;
  endedAt?: string;
}

export type CargoState = 'STARTING' | 'RUNNING' | 'DONE' | 'ERROR' | 'KILLED';

export interface CargoView {
  name: string;
  job: string;
  state: CargoState;
  createdAt: string;
  containers: CargoContainerView[];
}

/** A shrink under way: the AM is asked to give these GPUs back by the deadline. */
export interface ReclaimView {
  gpus: Grant;
  deadline: string;
  reason: string;
}

/** What the AM's event stream (`GET /v1/jobs/{id}/events`) carries, one object per line. */
export interface JobEvent {
  type:
    | 'hello'
    | 'grant.grown'
    | 'shrink.requested'
    | 'grant.shrunk'
    | 'cargo.started'
    | 'container.exited'
    | 'cargo.ended'
    | 'kill.requested'
    | 'pause.requested'
    | 'job.state';
  /** ISO-8601 UTC. */
  at: string;
  [field: string]: unknown;
}

export interface JobView {
  id: string;
  name: string;
  user: string;
  tags: string[];
  spec: JobSpec;
  state: JobState;
  history: StateChange[];
  acquired: Grant;
  /** GPUs the AM container got: node and indices. */
  am?: { node: string; gpus: number[]; container: string };
  exitCode?: number;
  reason?: string;
  /** 1-based position among QUEUED jobs, in the order the scheduler considers them. */
  queuePosition?: number;
  /** Why a QUEUED job waits (waiting for GPUs, over quota, behind a reservation…). */
  queueReason?: string;
  /** A shrink under way. */
  reclaim?: ReclaimView;
  /** PAUSED by its user (`crane job resume` queues it again) rather than for another job. */
  pausedByUser?: boolean;
  /** `job inspect` only: the job's cargos. */
  cargos?: CargoView[];
}

export interface UserInfo {
  id: string;
  username: string;
  isAdmin: boolean;
  /** Fair-share weight (default 1). */
  weight?: number;
  /** Most GPUs the user may hold at once. */
  quotaGpus?: number;
  /** The session is a job's own token (its AM's): it reaches only that job. */
  job?: string;
}

export interface NodeInfo {
  name: string;
  gpus: number[];
  free: number[];
  docker: boolean;
  hostJobs: boolean;
  state: 'READY' | 'LOST' | 'LEFT';
  pid?: number;
  /** A manager host's node. */
  manager?: boolean;
  lastHeartbeat: string;
  /** node GPU index -> job id, for busy GPUs (`resources`: only the caller's own jobs). */
  owners: Record<number, string>;
  /** `resources` only: node GPU index -> `user/job` for the caller's own jobs, else `another user`. */
  ownerLabels?: Record<number, string>;
}

export interface ResourceSummary {
  free: number;
  busy: number;
  total: number;
  nodes: NodeInfo[];
}

/** Node manager: start one container. */
export interface RunRequest {
  job: string;
  container: string;
  jobName: string;
  user: string;
  config: ContainerConfig;
  gpus: number[];
  /** Grace period for kills, ms. */
  graceMs?: number;
  /** The job's own API token (CRANE_TOKEN in the container). */
  token?: string;
  /** A cargo container: its cargo's name (CRANE_CARGO). */
  cargo?: string;
}

export interface KillRequest {
  container: string;
  force: boolean;
  graceMs?: number;
}

/** Node manager -> cluster manager. */
export interface RegisterNode {
  name: string;
  gpus: number[];
  docker: boolean;
  hostJobs: boolean;
  pid: number;
  version: string;
  /** Containers still running on the node (after a node-manager restart). */
  running: string[];
  /** Containers that ended while the cluster manager could not be told. */
  exited?: ContainerExit[];
  /** A manager host's node: it holds a JetStream replica of the state. */
  manager?: boolean;
}

export interface Heartbeat {
  name: string;
  running: string[];
  at: number;
  /**
   * The latest sample of every GPU of the node; sent when it changed since the last heartbeat, on
   * the first heartbeat after a registration, and every 10th heartbeat (absent: no change).
   */
  gpuUsage?: GpuSample[];
}

/** One GPU's utilisation and memory, as a node manager sampled it. */
export interface GpuSample {
  /** The node's GPU index. */
  gpu: number;
  /** Utilisation, 0-100 %. */
  util: number;
  memUsedMiB: number;
  memTotalMiB: number;
}

/** `job.usage`: the GPUs a job holds, their latest samples, and its GPU-seconds so far. */
export interface JobUsage {
  id: string;
  name: string;
  user: string;
  state: JobState;
  /** One row per GPU the job holds now (none once it ended, or while queued or paused). */
  gpus: JobGpuUsage[];
  gpuSeconds: number;
}

export interface JobGpuUsage extends Partial<Omit<GpuSample, 'gpu'>> {
  node: string;
  gpu: number;
  /** The container the GPU was given to: the AM's or a cargo container's (none: idle in the grant). */
  container?: string;
  /** When the node last reported (its sample is current as of then); absent: no sample yet. */
  sampledAt?: string;
}

/** `usage`: GPU-seconds per user and per job in a window. */
export interface UsageReport {
  /** ISO-8601 UTC; absent: since the first record. */
  since?: string;
  until: string;
  totalGpuSeconds: number;
  /** Per user, most GPU-seconds first; `share` of totalGpuSeconds, 0-1. */
  users: { user: string; gpuSeconds: number; jobs: number; share: number }[];
  /** Per job with GPU-time in the window, most first; `removed`: the job was removed since. */
  jobs: { id: string; name: string; user: string; gpuSeconds: number; state?: JobState; removed?: boolean }[];
}

export interface ContainerExit {
  job: string;
  container: string;
  node: string;
  exitCode: number;
  /** Set when the container could not start or the runtime failed. */
  error?: string;
  signal?: string;
  /** It never ran (the node refused or failed to start it). */
  neverStarted?: boolean;
}

/** One log line (bus subject crane.<cluster>.log.<job>.<container>). */
export interface LogLine {
  /** epoch ms */
  t: number;
  src: 'stdout' | 'stderr';
  line: string;
  container?: string;
}

export interface ImageCheck {
  ok: boolean;
  reason?: string;
}
