import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (pw: string, salt: Buffer, len: number, o: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(pw, salt, len, o, (e, k) => (e ? reject(e) : resolve(k))));

const N = 16384;
const R = 8;
const P = 1;

/** `scrypt$N$r$p$salt$hash`, base64url parts. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, { N, r: R, p: P });
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64url');
  const got = await scrypt(password, Buffer.from(salt, 'base64url'), want.length, { N: +n!, r: +r!, p: +p! });
  return timingSafeEqual(want, got);
}

export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

/** Random bytes are fetched 4 KiB at a time: a token per job start made the syscall show. */
const pool = { buf: Buffer.alloc(0), at: 0 };

export function generateToken(): string {
  if (pool.at + 32 > pool.buf.length) {
    pool.buf = randomBytes(4096);
    pool.at = 0;
  }
  const token = pool.buf.subarray(pool.at, pool.at + 32).toString('base64url');
  // Used bytes are wiped: a token never stays readable in the pool.
  pool.buf.fill(0, pool.at, pool.at + 32);
  pool.at += 32;
  return token;
}
