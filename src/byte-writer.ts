// A growable byte buffer that frames and their JSON payloads are written into as UTF-8, so that a
// batch of frames reaches the transport as bytes without ever being a JavaScript string (a string
// built piece by piece is a rope, and flattening and encoding it costs more than building it).

/**
 * Node's Buffer methods that encode a string straight into the buffer. They are not in the public
 * typings, but every supported Node version has them (Buffer.prototype.write calls them after
 * normalising its arguments, which is what is saved here).
 */
interface EncodingBuffer extends Buffer {
  utf8Write(s: string, offset: number, length?: number): number;
}

const SHORT_PIECE = 10;

/** Appends bytes at `pos`, growing `buf` (by copying) as needed. */
export class ByteWriter {
  /** Current storage; a Buffer so that its string encoders (utf8Write, latin1Write) can be used. */
  buf: Buffer;
  /** Bytes written so far: the content is buf[0, pos). */
  pos: number;

  constructor(initialBytes: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(1, Math.floor(initialBytes)));
    this.pos = 0;
  }

  /** Makes room for n more bytes, growing (copying) buf if needed; never loses bytes already written. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  /**
   * Appends bytes (constant pieces). Pieces of up to SHORT_PIECE bytes are copied by a loop:
   * measured here, Uint8Array.prototype.set costs ~15 ns a call whatever the length, the loop
   * ~1 ns a byte.
   */
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const buf = this.buf;
    const p = this.pos;
    if (n <= SHORT_PIECE) for (let i = 0; i < n; i++) buf[p + i] = b[i];
    else buf.set(b, p);
    this.pos = p + n;
  }

  /**
   * Appends the UTF-8 of a well-formed string (JSON text). Room for 3 bytes per UTF-16 unit is
   * made first (the most any unit takes; a surrogate pair takes 4 for 2), so utf8Write never
   * truncates. A lone surrogate would be written as U+FFFD: JSON text from JSON.stringify has none.
   */
  string(s: string): void {
    const n = 3 * s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    this.pos += (this.buf as EncodingBuffer).utf8Write(s, this.pos);
  }

  /** Replaces buf with a fresh buffer of `bytes` when it grew beyond that (call only when pos === 0). */
  shrink(bytes: number): void {
    if (this.buf.length > bytes) this.buf = Buffer.allocUnsafeSlow(Math.max(1, Math.floor(bytes)));
  }

  /**
   * Kept out of ensure() so that ensure's common case (room enough) stays small enough to inline.
   * Doubling keeps the total copied below twice the final size.
   */
  private grow(n: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}
