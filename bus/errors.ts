/** Typed errors that travel on the bus as a `Crane-Error: <code>` header. */
export const ERROR_STATUS = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'too-large': 413,
  internal: 500,
  unavailable: 503,
  timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class CraneError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CraneError';
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isErrorCode(s: string | undefined): s is ErrorCode {
  return s !== undefined && Object.prototype.hasOwnProperty.call(ERROR_STATUS, s);
}

export const invalid = (m: string) => new CraneError('invalid', m);
export const notFound = (m: string) => new CraneError('not-found', m);
export const conflict = (m: string) => new CraneError('conflict', m);
