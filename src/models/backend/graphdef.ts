/**
 * Writes a TensorFlow SavedModel (`saved_model.pb`) holding one GraphDef, in protobuf's
 * wire format, for the tensorflow backend's captured training steps
 * (`tensorflow_graph.ts`). Only the fields such a graph needs are written: nodes with
 * their op, inputs and attributes (string, int, float, bool, type, shape and their lists,
 * and the int32 or float32 tensor of a Const),
 * the graph's producer version, and the meta graph's tags. No variables: every value a
 * graph reads comes in through a Placeholder or is a Const.
 *
 * Field numbers follow tensorflow/core/protobuf/saved_model.proto, meta_graph.proto and
 * tensorflow/core/framework/{graph,node_def,attr_value,tensor_shape,versions}.proto.
 */

/** An attribute value as tfjs-node passes it to TensorFlow (`TFEOpAttr`). */
export type AttrValue =
  | { kind: 'string'; value: string }
  | { kind: 'int'; value: number | number[] }
  | { kind: 'float'; value: number | number[] }
  | { kind: 'bool'; value: boolean | boolean[] }
  | { kind: 'type'; value: number }
  | { kind: 'shape'; value: number[] }
  /** A constant tensor (a Const node's value): int32 or float32 values, row-major. */
  | { kind: 'tensor'; dtype: number; shape: number[]; values: ArrayLike<number>; int32: boolean };

export interface NodeDef {
  name: string;
  op: string;
  /** `node` or `node:k` */
  inputs: string[];
  attrs: [string, AttrValue][];
}

class Writer {
  private buf = new Uint8Array(1024);
  len = 0;

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** An unsigned varint; negative numbers as protobuf's int64 (ten bytes, two's complement). */
  varint(v: number): void {
    this.grow(10);
    if (v < 0) {
      let x = BigInt.asUintN(64, BigInt(v));
      while (x >= 0x80n) {
        this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
        x >>= 7n;
      }
      this.buf[this.len++] = Number(x);
      return;
    }
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, fill: (w: Writer) => void): void {
    const w = new Writer();
    fill(w);
    this.bytes(field, w.finish());
  }

  int(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    this.grow(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  packedInts(field: number, vs: number[]): void {
    const w = new Writer();
    for (const v of vs) w.varint(v);
    this.bytes(field, w.finish());
  }

  packedFloats(field: number, vs: number[]): void {
    const w = new Writer();
    for (const v of vs) {
      w.grow(4);
      new DataView(w.buf.buffer, w.len, 4).setFloat32(0, v, true);
      w.len += 4;
    }
    this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function shapeProto(w: Writer, dims: number[]): void {
  // TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }
  for (const d of dims) w.message(2, (dim) => dim.int(1, d));
}

function attrValue(w: Writer, a: AttrValue): void {
  // AttrValue: list = 1, s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7.
  // ListValue: s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7 (numbers packed).
  switch (a.kind) {
    case 'string':
      w.string(2, a.value);
      return;
    case 'int':
      if (Array.isArray(a.value)) w.message(1, (l) => l.packedInts(3, a.value as number[]));
      else w.int(3, a.value);
      return;
    case 'float':
      if (Array.isArray(a.value)) w.message(1, (l) => l.packedFloats(4, a.value as number[]));
      else w.float(4, a.value);
      return;
    case 'bool':
      if (Array.isArray(a.value)) w.message(1, (l) => l.packedInts(5, (a.value as boolean[]).map(Number)));
      else w.int(5, a.value ? 1 : 0);
      return;
    case 'type':
      w.int(6, a.value);
      return;
    case 'shape':
      w.message(7, (s) => shapeProto(s, a.value));
      return;
    case 'tensor':
      // TensorProto: dtype = 1, tensor_shape = 2, float_val = 5, int_val = 7 (packed).
      w.message(8, (t) => {
        t.int(1, a.dtype);
        t.message(2, (s) => shapeProto(s, a.shape));
        if (a.int32) t.packedInts(7, Array.from(a.values));
        else t.packedFloats(5, Array.from(a.values));
      });
      return;
  }
}

function nodeDef(w: Writer, n: NodeDef): void {
  // NodeDef: name = 1, op = 2, input = 3, device = 4, attr = 5 (map<string, AttrValue>).
  w.string(1, n.name);
  w.string(2, n.op);
  for (const i of n.inputs) w.string(3, i);
  for (const [key, value] of n.attrs) {
    w.message(5, (e) => {
      e.string(1, key);
      e.message(2, (v) => attrValue(v, value));
    });
  }
}

/**
 * The bytes of a `saved_model.pb` with one meta graph tagged `tags` whose graph is `nodes`.
 * `producer` is the GraphDef version the nodes were written for (the running TensorFlow's).
 */
export function savedModelBytes(nodes: NodeDef[], producer: number, tags: string[] = ['serve']): Uint8Array {
  const w = new Writer();
  // SavedModel: saved_model_schema_version = 1, meta_graphs = 2.
  w.int(1, 1);
  w.message(2, (mg) => {
    // MetaGraphDef: meta_info_def = 1 { tags = 4 }, graph_def = 2.
    mg.message(1, (info) => {
      for (const t of tags) info.string(4, t);
    });
    mg.message(2, (g) => {
      // GraphDef: node = 1, versions = 4 { producer = 1 }.
      for (const n of nodes) g.message(1, (nd) => nodeDef(nd, n));
      g.message(4, (v) => v.int(1, producer));
    });
  });
  return w.finish();
}

/**
 * A serialized ConfigProto (tensorflow/core/protobuf/config.proto) for the sessions of
 * captured graphs, in hex: the thread pools given, and no graph optimisation (grappler's
 * meta-optimizer off, OptimizerOptions at L0), so a graph runs exactly the ops recorded.
 */
export function sessionConfigHex(o: { intraThreads: number; interThreads: number }): string {
  const w = new Writer();
  // ConfigProto: intra_op_parallelism_threads = 2, inter_op_parallelism_threads = 5, graph_options = 10.
  w.int(2, o.intraThreads);
  w.int(5, o.interThreads);
  w.message(10, (g) => {
    // GraphOptions: optimizer_options = 3 { opt_level = 3 (L0 = -1) }, rewrite_options = 10 { disable_meta_optimizer = 19 }.
    g.message(3, (opt) => opt.int(3, -1));
    g.message(10, (rw) => rw.int(19, 1));
  });
  return Buffer.from(w.finish()).toString('hex');
}
