// A self-describing block of equal-length typed columns in one buffer: the unit of a columnar
// snapshot segment. Columns are found by name, so a reader of an older block sees a column added
// since as missing (and uses its default), and adding a column is one entry in a spec list.
//
// Layout (little endian): u32 magic, u32 rows, u32 columns, then per column: u8 kind (1 = f64,
// 2 = i32), u8 name length, the name (ASCII), zero padding to 8 bytes, rows values, padding to 8.
// A decoded column is a view on the block's buffer (no copy) when the block starts 8-aligned.

import { assert } from '../assert.js';

export const columnBlockMagic = 0x434d544d; // 'MTMC'

export type ColumnKind = 'f64' | 'i32';

export interface ColumnSpec {
  readonly name: string;
  readonly kind: ColumnKind;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

function headerBytes(spec: ColumnSpec): number {
  return align8(2 + spec.name.length);
}

/** Allocates a block for `rows` rows of the given columns; fill the columns, then take `bytes`. */
export class ColumnBlockWriter<S extends readonly ColumnSpec[]> {
  readonly bytes: Uint8Array;
  private readonly views = new Map<string, Float64Array | Int32Array>();

  constructor(specs: S, readonly rows: number) {
    let size = 16;
    for (const s of specs) size += headerBytes(s) + align8(rows * (s.kind === 'f64' ? 8 : 4));
    const buffer = new ArrayBuffer(size);
    this.bytes = new Uint8Array(buffer);
    const dv = new DataView(buffer);
    dv.setUint32(0, columnBlockMagic, true);
    dv.setUint32(4, rows, true);
    dv.setUint32(8, specs.length, true);
    let at = 16;
    for (const s of specs) {
      assert(s.name.length < 256 && /^[\x20-\x7e]+$/.test(s.name), 'column names are short ASCII');
      dv.setUint8(at, s.kind === 'f64' ? 1 : 2);
      dv.setUint8(at + 1, s.name.length);
      for (let i = 0; i < s.name.length; i++) dv.setUint8(at + 2 + i, s.name.charCodeAt(i));
      at += headerBytes(s);
      this.views.set(s.name, s.kind === 'f64' ? new Float64Array(buffer, at, rows) : new Int32Array(buffer, at, rows));
      at += align8(rows * (s.kind === 'f64' ? 8 : 4));
    }
  }

  f64(name: S[number]['name']): Float64Array {
    const v = this.views.get(name);
    assert(v instanceof Float64Array, `f64 column ${name}`);
    return v;
  }

  i32(name: S[number]['name']): Int32Array {
    const v = this.views.get(name);
    assert(v instanceof Int32Array, `i32 column ${name}`);
    return v;
  }
}

export class ColumnBlock {
  private constructor(
    readonly rows: number,
    private readonly columns: Map<string, Float64Array | Int32Array>,
  ) {}

  /** Decodes a block; throws on a buffer that is not one (a snapshot is never half written, see the store). */
  static read(bytes: Uint8Array): ColumnBlock {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    assert(bytes.byteLength >= 16 && dv.getUint32(0, true) === columnBlockMagic, 'not a column block');
    const rows = dv.getUint32(4, true);
    const count = dv.getUint32(8, true);
    // Views need 8-aligned offsets: copy a block that does not start aligned (rare: a pooled buffer).
    const aligned = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
    const columns = new Map<string, Float64Array | Int32Array>();
    let at = 16;
    for (let c = 0; c < count; c++) {
      const kind = dv.getUint8(at);
      const len = dv.getUint8(at + 1);
      let name = '';
      for (let i = 0; i < len; i++) name += String.fromCharCode(dv.getUint8(at + 2 + i));
      at += align8(2 + len);
      const size = kind === 1 ? 8 : 4;
      assert((kind === 1 || kind === 2) && at + rows * size <= bytes.byteLength, `column block: bad column ${name}`);
      const offset = aligned.byteOffset + at;
      columns.set(name, kind === 1 ? new Float64Array(aligned.buffer, offset, rows) : new Int32Array(aligned.buffer, offset, rows));
      at += align8(rows * size);
    }
    return new ColumnBlock(rows, columns);
  }

  has(name: string): boolean {
    return this.columns.has(name);
  }

  f64(name: string): Float64Array {
    const v = this.columns.get(name);
    assert(v instanceof Float64Array, `column block lacks f64 column ${name}`);
    return v;
  }

  i32(name: string): Int32Array {
    const v = this.columns.get(name);
    assert(v instanceof Int32Array, `column block lacks i32 column ${name}`);
    return v;
  }
}
