/**
 * Splits an inbound byte stream at '\n'. A line longer than maxFrameBytes is skipped up to the
 * next newline without being kept, so a hostile peer cannot grow memory past that bound.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private skipping = false;
  private skippedBytes = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onOversize: (bytes: number) => void,
  ) {}

  /** Returns the complete lines in `chunk` (trailing '\r' removed, empty lines left out). */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        this.keep(chunk, start, chunk.length);
        break;
      }
      this.keep(chunk, start, nl);
      const line = this.finishLine();
      if (line) lines.push(line);
      start = nl + 1;
    }
    return lines;
  }

  /** Forget a partial line (the connection that carried it is gone). */
  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.skipping = false;
    this.skippedBytes = 0;
  }

  private keep(chunk: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    if (this.skipping) {
      this.skippedBytes += n;
      return;
    }
    if (this.partBytes + n > this.maxFrameBytes) {
      this.skipping = true;
      this.skippedBytes = this.partBytes + n;
      this.parts = [];
      this.partBytes = 0;
      return;
    }
    // A partial line must not pin the whole read buffer it came from.
    this.parts.push(end === chunk.length ? Buffer.from(chunk.subarray(start, end)) : chunk.subarray(start, end));
    this.partBytes += n;
  }

  private finishLine(): Buffer | null {
    if (this.skipping) {
      const bytes = this.skippedBytes;
      this.skipping = false;
      this.skippedBytes = 0;
      this.onOversize(bytes);
      return null;
    }
    if (this.parts.length === 0) return null;
    let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    if (line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
    return line.length > 0 ? line : null;
  }
}
