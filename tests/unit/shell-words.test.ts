import test from 'ava';
import { CraneError } from '../../bus/errors.js';
import { splitCommand } from '../../actors/node-manager/shell-words.js';

const cases: Array<[string, string[]]> = [
  ['echo hello world', ['echo', 'hello', 'world']],
  ['  python  -u\ttrain.py \n', ['python', '-u', 'train.py']],
  ["echo 'a b' \"c d\"", ['echo', 'a b', 'c d']],
  ["echo 'it''s'", ['echo', 'its']],
  ['echo a\\ b', ['echo', 'a b']],
  ['echo "x\\"y" "a\\b" "\\$HOME"', ['echo', 'x"y', 'a\\b', '$HOME']],
  ["echo '\\n' 'a;b|c&d>e<f$(g)'", ['echo', '\\n', 'a;b|c&d>e<f$(g)']],
  ['echo "" \'\'', ['echo', '', '']],
  ['echo pre"mid"\'post\'', ['echo', 'premidpost']],
  ['echo \\;', ['echo', ';']],
  ['echo a\\\nb', ['echo', 'ab']],
  ['echo a # comment', ['echo', 'a']],
  ['echo a#b', ['echo', 'a#b']],
  ['echo $HOME', ['echo', '$HOME']],
  ['', []],
];

for (const [cmd, words] of cases) {
  test(`splits ${JSON.stringify(cmd)}`, (t) => {
    t.deepEqual(splitCommand(cmd), words);
  });
}

for (const cmd of ['a; b', 'a | b', 'a && b', 'a > f', 'a < f', 'echo $(id)', 'echo `id`', 'echo "$(id)"', 'sleep 1 &', '(a)']) {
  test(`refuses operators in ${JSON.stringify(cmd)}`, (t) => {
    const err = t.throws(() => splitCommand(cmd), { instanceOf: CraneError });
    t.is(err?.code, 'invalid');
    t.is(err?.message, 'command has shell operators: use --shell');
  });
}

for (const cmd of ["echo 'open", 'echo "open', 'echo \\']) {
  test(`refuses unterminated ${JSON.stringify(cmd)}`, (t) => {
    const err = t.throws(() => splitCommand(cmd), { instanceOf: CraneError });
    t.is(err?.code, 'invalid');
  });
}
