/** Longest line kept; the rest of a longer line is dropped. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * Turns a byte stream into lines (without the newline or a trailing CR). Lines longer than
 * MAX_LINE_BYTES are cut; end() flushes a final partial line.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** The current line was already cut: drop bytes until the next newline. */
  private skipping = false;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly max = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      this.append(chunk.subarray(start, end));
      if (nl === -1) return;
      this.flushLine();
      this.skipping = false;
      start = nl + 1;
    }
  }

  end(): void {
    if (this.size > 0) this.flushLine();
    this.skipping = false;
  }

  private append(b: Buffer): void {
    if (this.skipping || b.length === 0) return;
    const room = this.max - this.size;
    if (b.length >= room) {
      this.parts.push(b.subarray(0, room));
      this.size += room;
      this.flushLine();
      this.skipping = true;
      return;
    }
    this.parts.push(b);
    this.size += b.length;
  }

  private flushLine(): void {
    if (this.skipping) return;
    let line = Buffer.concat(this.parts, this.size).toString('utf8');
    this.parts = [];
    this.size = 0;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.emit(line);
  }
}
