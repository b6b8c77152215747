import test from 'ava';
import { replicasWithout, roleChangeRefusal, type RoleFacts } from '../../actors/admin/role-policy.js';
import { shouldStepDown } from '../../actors/admin/leader-placement.js';
import type { NodeInfo } from '../../actors/protocol.js';

const node = (name: string, manager: boolean, state: NodeInfo['state'] = 'READY'): NodeInfo => ({
  name, gpus: [0, 1], free: [0, 1], docker: false, hostJobs: true, state, lastHeartbeat: '', owners: {}, ...(manager ? { manager: true } : {}),
});
const nodes = [node('h1', true), node('h2', false), node('h3', false)];
const facts = (f: Partial<RoleFacts>): RoleFacts => ({ verb: 'promote', node: 'h2', nodes, ha: true, force: false, running: [], ...f });
const why = (f: Partial<RoleFacts>) => roleChangeRefusal(facts(f))?.message;

test('promote and demote are refused with one reason, in order: unknown node, not --ha, wrong role, last manager, jobs', (t) => {
  t.is(why({ node: 'nope', ha: undefined }), "no node 'nope' in this cluster (craneadm status lists them)");
  t.is(roleChangeRefusal(facts({ node: 'nope' }))?.code, 'not-found');
  t.is(why({ ha: false }), 'promote needs a cluster started with craneadm init --ha');
  t.is(why({ verb: 'demote', ha: undefined }), 'demote needs a cluster started with craneadm init --ha');
  t.is(why({ node: 'h1' }), 'h1 is a manager host already');
  t.is(why({ verb: 'demote' }), "h2 is a worker host already (craneadm status shows each node's role)");
  t.is(why({ verb: 'demote', node: 'h1' }), "cannot demote h1: it is the cluster's last manager host (promote another host first)");
  t.is(why({ running: ['a', 'b'] }), '2 job(s) run on h2 (a, b): craneadm promote h2 --force requeues them');
  t.is(roleChangeRefusal(facts({ running: ['a'] }))?.code, 'conflict');
  t.is(why({ nodes: [node('h1', true), node('h2', false, 'LOST')] }), 'h2 is LOST: its crane-admind must be running to promote it');
  const two = [node('h1', true), node('h2', true)];
  t.is(
    why({ verb: 'demote', node: 'h1', nodes: two, replicas: 1 }),
    'cannot demote h1 yet: the state is not replicated on another manager host (craneadm status shows its replicas; try again in a moment)',
  );
  t.truthy(why({ verb: 'demote', node: 'h1', nodes: two, replicas: 0 }), 'not in JetStream yet');
  t.is(why({ verb: 'demote', node: 'h1', nodes: two, replicas: 2 }), undefined);
});

test('what may go ahead', (t) => {
  t.is(why({}), undefined);
  t.is(why({ running: ['a'], force: true }), undefined);
  const two = [node('h1', true), node('h2', true), node('h3', false)];
  t.is(why({ verb: 'demote', node: 'h1', nodes: two }), undefined);
  // A LOST manager does not count: demoting the other would leave none.
  t.truthy(why({ verb: 'demote', node: 'h1', nodes: [node('h1', true), node('h2', true, 'LOST')] }));
});

test('a demotion leaves one replica per other manager host, up to 3', (t) => {
  const ms = (n: number) => Array.from({ length: n }, (_, i) => node(`m${i}`, true));
  t.is(replicasWithout(ms(2), 'm0'), 1);
  t.is(replicasWithout(ms(3), 'm0'), 2);
  t.is(replicasWithout(ms(4), 'm0'), 3);
  t.is(replicasWithout(ms(5), 'm0'), 3);
  t.is(replicasWithout([...ms(2), node('w', false)], 'm1'), 1);
});

test('leader placement: the active manager host hands a leadership over only when two followers have caught up', (t) => {
  const f = (name: string, current = true) => ({ name, current });
  t.true(shouldStepDown({ leader: 'a', followers: [f('b'), f('c')] }, 'a'));
  t.false(shouldStepDown({ leader: 'b', followers: [f('a'), f('c')] }, 'a'), 'not the leader');
  t.false(shouldStepDown({ leader: 'a', followers: [f('b')] }, 'a'), 'two servers: either one down loses the quorum anyway');
  t.false(shouldStepDown({ leader: 'a', followers: [f('b'), f('c', false)] }, 'a'), 'a follower behind');
  t.false(shouldStepDown({ followers: [f('b'), f('c')] }, 'a'), 'no leader');
});
