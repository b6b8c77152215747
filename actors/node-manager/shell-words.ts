import { CraneError } from '../../bus/errors.js';

const OPERATORS = new Set([';', '|', '&', '>', '<', '(', ')', '`']);
const SPACE = new Set([' ', '\t', '\n']);

const operatorError = () => new CraneError('invalid', 'command has shell operators: use --shell');

/**
 * Splits a command into argv with POSIX shell word rules (quotes, backslashes, comments), without
 * expansion. Shell operators (; | & > < ( ) ` $( ) outside single quotes are refused: such a
 * command needs a shell.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const n = cmd.length;
  while (i < n) {
    const c = cmd[i]!;
    if (SPACE.has(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === '#' && !inWord) {
      const nl = cmd.indexOf('\n', i);
      i = nl === -1 ? n : nl;
    } else if (OPERATORS.has(c) || (c === '$' && cmd[i + 1] === '(')) {
      throw operatorError();
    } else if (c === '\\') {
      if (i + 1 >= n) throw new CraneError('invalid', 'command ends with a lone backslash');
      if (cmd[i + 1] !== '\n') {
        word += cmd[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end === -1) throw new CraneError('invalid', 'command has an unterminated single quote');
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= n) throw new CraneError('invalid', 'command has an unterminated double quote');
        const d = cmd[i]!;
        if (d === '"') break;
        if (d === '`' || (d === '$' && cmd[i + 1] === '(')) throw operatorError();
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(cmd[i + 1]!)) {
          if (cmd[i + 1] !== '\n') word += cmd[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
