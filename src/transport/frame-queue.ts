/** FIFO of encoded frames with their sizes; O(1) amortised push, shift and drop-oldest. */
export class FrameQueue {
  private frames: string[] = [];
  private sizes: number[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.frames.length - this.head;
  }

  push(frame: string, size: number): void {
    this.frames.push(frame);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Put frames back in front, in the order given (they were taken from the front earlier). */
  unshift(frames: string[], sizes: number[]): void {
    if (frames.length === 0) return;
    this.compact(true);
    this.frames = frames.concat(this.frames);
    this.sizes = sizes.concat(this.sizes);
    for (const s of sizes) this.bytes += s;
  }

  /** Drop the `n` oldest frames; returns how many were dropped. */
  dropOldest(n: number): number {
    const count = Math.min(n, this.length);
    for (let i = 0; i < count; i++) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    this.compact(false);
    return count;
  }

  /** Drop oldest frames until no more than `maxBytes` are queued, keeping at least the newest one. */
  trimToBytes(maxBytes: number): number {
    let dropped = 0;
    while (this.bytes > maxBytes && this.length > 1) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
      dropped++;
    }
    if (dropped) this.compact(false);
    return dropped;
  }

  /** Remove and return frames from the front, at least one, up to about `maxBytes`. */
  take(maxBytes: number): { frames: string[]; sizes: number[]; bytes: number } {
    let end = this.head;
    let bytes = 0;
    const limit = this.frames.length;
    while (end < limit && (end === this.head || bytes + this.sizes[end]! <= maxBytes)) {
      bytes += this.sizes[end]!;
      end++;
    }
    const frames = this.frames.slice(this.head, end);
    const sizes = this.sizes.slice(this.head, end);
    this.head = end;
    this.bytes -= bytes;
    this.compact(false);
    return { frames, sizes, bytes };
  }

  clear(): number {
    const n = this.length;
    this.frames = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    return n;
  }

  private compact(force: boolean): void {
    if (this.head === 0) return;
    if (this.head === this.frames.length) {
      this.frames = [];
      this.sizes = [];
      this.head = 0;
    } else if (force || (this.head > 4096 && this.head * 2 > this.frames.length)) {
      this.frames = this.frames.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }
}
