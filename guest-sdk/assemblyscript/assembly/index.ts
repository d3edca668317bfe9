// leadtime-guest for AssemblyScript: write a leadtime scaling policy (ABI v1, docs/ABI.md).
//
// Your entry file registers a decide function (and optionally an init check) and re-exports the
// ABI functions of this module:
//
//   import { Request, Response, setDecide } from "leadtime-guest/assembly";
//   export { leadtime_abi_version, leadtime_alloc, leadtime_decide, leadtime_init } from "leadtime-guest/assembly";
//   function decide(req: Request): Response { return Response.of(req.current, "hold"); }
//   setDecide(decide);
//
// Build with the minimal runtime and route `abort` here (asconfig.json in this folder does both;
// see README.md), so that the module imports nothing but `leadtime.log`.

// ---- Host import. ----

// @ts-ignore: decorator
@external("leadtime", "log")
declare function hostLog(level: i32, ptr: usize, len: i32): void;

/** Fine detail. */
export const DEBUG: i32 = 0;
/** Normal events. */
export const INFO: i32 = 1;
/** Something odd. */
export const WARN: i32 = 2;
/** Something failed; the host keeps the last one as the error's detail. */
export const ERROR: i32 = 3;

/** Sends a line to the host's log. */
export function log(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message);
  hostLog(level, changetype<usize>(bytes), bytes.byteLength);
}

/** Where `abort` (failed assertions, out-of-range indexing) goes: logged, then a trap. */
export function leadtimeAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "policy aborted: " + (message !== null ? message : "");
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  log(ERROR, text);
  unreachable();
}

// ---- Types. ----

/** A window of one metric: the workload's total per interval, oldest first; NaN is missing. */
export class Metric {
  /** Metric name, e.g. `requests_per_second`. */
  name: string = "";
  /** How much of this metric one pod should carry. */
  targetPerPod: f64 = NaN;
  /** Seconds between values. */
  intervalSeconds: f64 = NaN;
  /** Time of the last value, Unix ms. */
  end: i64 = 0;
  /** The values; NaN where missing. */
  values: Float64Array = new Float64Array(0);

  /** The most recent value that is not missing, or NaN when there is none. */
  last(): f64 {
    for (let i = this.values.length - 1; i >= 0; i--) {
      const v = unchecked(this.values[i]);
      if (!isNaN(v)) return v;
    }
    return NaN;
  }

  /** Mean of the values that are not missing, or NaN when there are none. */
  mean(): f64 {
    let sum: f64 = 0;
    let n = 0;
    for (let i = 0; i < this.values.length; i++) {
      const v = unchecked(this.values[i]);
      if (!isNaN(v)) {
        sum += v;
        n++;
      }
    }
    return n > 0 ? sum / <f64>n : NaN;
  }
}

/** How long one recent pod took to become Ready. */
export class ReadyTime {
  /** When the pod was created, Unix ms. */
  startedAt: i64 = 0;
  /** Seconds from creation to Ready. */
  readySeconds: f64 = NaN;
}

/** Kind of a parameter value. */
export enum ParamKind {
  Bool,
  Number,
  Text,
}

/** One parameter. */
export class Param {
  /** Its name. */
  name: string = "";
  /** Which of the fields below holds the value. */
  kind: ParamKind = ParamKind.Number;
  /** The value when `kind` is Bool. */
  boolean: bool = false;
  /** The value when `kind` is Number. */
  number: f64 = 0;
  /** The value when `kind` is Text. */
  text: string = "";
}

/** The policy's parameters. */
export class Params {
  /** Every parameter, in the order received. */
  items: Array<Param> = [];

  /** The parameter called `name`, or null. */
  get(name: string): Param | null {
    for (let i = 0; i < this.items.length; i++) {
      const p = unchecked(this.items[i]);
      if (p.name == name) return p;
    }
    return null;
  }

  /** A number parameter, `def` when absent, NaN when present but not a finite number. */
  number(name: string, def: f64): f64 {
    const p = this.get(name);
    if (p === null) return def;
    if (p.kind != ParamKind.Number || !isFinite(p.number)) return NaN;
    return p.number;
  }
}

/** One call's input. */
export class Request {
  /** ABI version of the host. */
  abiVersion: u32 = 0;
  /** Time of the decision, Unix ms. */
  now: i64 = 0;
  /** Workload namespace. */
  namespace: string = "";
  /** Workload name. */
  name: string = "";
  /** Pods that exist. */
  current: u32 = 0;
  /** Pods that are Ready. */
  ready: u32 = 0;
  /** Lowest allowed target. */
  min: u32 = 0;
  /** Highest allowed target. */
  max: u32 = 0;
  /** Metric windows. */
  metrics: Array<Metric> = [];
  /** Recent ready times. */
  readyTimes: Array<ReadyTime> = [];
  /** Parameters. */
  params: Params = new Params();
  /** The state returned last time, or null. */
  state: Uint8Array | null = null;

  /** The metric called `name`, or null. */
  metric(name: string): Metric | null {
    for (let i = 0; i < this.metrics.length; i++) {
      const m = unchecked(this.metrics[i]);
      if (m.name == name) return m;
    }
    return null;
  }

  /** The q quantile (0..=1, linear interpolation) of finite, non-negative ready times; NaN if none. */
  readyQuantile(q: f64): f64 {
    const v = new Float64Array(this.readyTimes.length);
    let n = 0;
    for (let i = 0; i < this.readyTimes.length; i++) {
      const s = unchecked(this.readyTimes[i]).readySeconds;
      if (isFinite(s) && s >= 0) v[n++] = s;
    }
    if (n == 0) return NaN;
    const sorted = v.subarray(0, n).sort();
    if (!(q >= 0)) q = 0;
    if (q > 1) q = 1;
    const pos = q * <f64>(n - 1);
    const lo = <i32>pos;
    const hi = lo + 1 < n ? lo + 1 : n - 1;
    const frac = pos - <f64>lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
  }
}

/** A predicted series at a fixed step. */
export class Forecast {
  /** Time of the first value, Unix ms. */
  start: i64 = 0;
  /** Seconds between values. */
  intervalSeconds: f64 = 0;
  /** Predicted totals. */
  values: Float64Array = new Float64Array(0);
}

/** One call's output. */
export class Response {
  /** The replica target: a whole number; saturates at 4294967295, NaN and negatives become 0. */
  replicas: f64 = 0;
  /** Why this target. */
  reason: string = "";
  /** Set to fail the call. */
  error: string | null = null;
  /** Bytes to receive back next time. */
  state: Uint8Array | null = null;
  /** Expected load, for plots. */
  forecast: Forecast | null = null;

  /** A decision. */
  static of(replicas: f64, reason: string): Response {
    const r = new Response();
    r.replicas = replicas;
    r.reason = reason;
    return r;
  }

  /** A failed call. */
  static fail(message: string): Response {
    const r = new Response();
    r.error = message;
    return r;
  }
}

// ---- Registration. ----

let decideFn: (req: Request) => Response = (req: Request): Response => Response.fail("no policy registered: call setDecide");
let initFn: (params: Params) => string | null = (params: Params): string | null => null;

/** Registers the policy's decide function. Call it at the top level of your entry file. */
export function setDecide(f: (req: Request) => Response): void {
  decideFn = f;
}

/** Registers a check of the params at load: return null to accept, or why not. */
export function setInit(f: (params: Params) => string | null): void {
  initFn = f;
}

// ---- MessagePack reader. ----

class Reader {
  pos: usize;
  end: usize;
  err: string | null = null;

  constructor(ptr: usize, len: usize) {
    this.pos = ptr;
    this.end = ptr + len;
  }

  fail(why: string): void {
    if (this.err === null) this.err = why;
    this.pos = this.end;
  }

  need(n: usize): bool {
    if (this.end - this.pos < n) {
      this.fail("truncated message");
      return false;
    }
    return true;
  }

  peek(): u8 {
    return this.pos < this.end ? load<u8>(this.pos) : 0xc1;
  }

  be(n: i32): u64 {
    if (!this.need(<usize>n)) return 0;
    let v: u64 = 0;
    for (let i = 0; i < n; i++) v = (v << 8) | <u64>load<u8>(this.pos + <usize>i);
    this.pos += <usize>n;
    return v;
  }

  skip(): void {
    let pending: u64 = 1;
    while (pending > 0 && this.err === null) {
      pending--;
      if (!this.need(1)) return;
      const t = load<u8>(this.pos++);
      let n: u64 = 0;
      if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) continue;
      if ((t & 0xe0) == 0xa0) n = t & 0x1f;
      else if ((t & 0xf0) == 0x90) { pending += t & 0x0f; continue; }
      else if ((t & 0xf0) == 0x80) { pending += (t & 0x0f) * 2; continue; }
      else if (t == 0xc4 || t == 0xd9) n = this.be(1);
      else if (t == 0xc5 || t == 0xda) n = this.be(2);
      else if (t == 0xc6 || t == 0xdb) n = this.be(4);
      else if (t == 0xcc || t == 0xd0) n = 1;
      else if (t == 0xcd || t == 0xd1) n = 2;
      else if (t == 0xca || t == 0xce || t == 0xd2) n = 4;
      else if (t == 0xcb || t == 0xcf || t == 0xd3) n = 8;
      else if (t == 0xd4) n = 2;
      else if (t == 0xd5) n = 3;
      else if (t == 0xd6) n = 5;
      else if (t == 0xd7) n = 9;
      else if (t == 0xd8) n = 17;
      else if (t == 0xc7) n = this.be(1) + 1;
      else if (t == 0xc8) n = this.be(2) + 1;
      else if (t == 0xc9) n = this.be(4) + 1;
      else if (t == 0xdc) { pending += this.be(2); continue; }
      else if (t == 0xdd) { pending += this.be(4); continue; }
      else if (t == 0xde) { pending += this.be(2) * 2; continue; }
      else if (t == 0xdf) { pending += this.be(4) * 2; continue; }
      else { this.fail("invalid MessagePack byte"); return; }
      if (!this.need(<usize>n)) return;
      this.pos += <usize>n;
    }
  }

  /** A number of any width (nil is NaN); `ok` tells whether there was one. */
  ok: bool = true;
  number(): f64 {
    this.ok = true;
    if (!this.need(1)) { this.ok = false; return NaN; }
    const t = load<u8>(this.pos);
    if (t <= 0x7f) { this.pos++; return <f64>t; }
    if (t >= 0xe0) { this.pos++; return <f64><i8>t; }
    this.pos++;
    if (t == 0xc0) return NaN;
    if (t == 0xcc) return <f64>this.be(1);
    if (t == 0xcd) return <f64>this.be(2);
    if (t == 0xce) return <f64>this.be(4);
    if (t == 0xcf) return <f64>this.be(8);
    if (t == 0xd0) return <f64><i8>this.be(1);
    if (t == 0xd1) return <f64><i16>this.be(2);
    if (t == 0xd2) return <f64><i32>this.be(4);
    if (t == 0xd3) return <f64><i64>this.be(8);
    if (t == 0xca) return <f64>reinterpret<f32>(<u32>this.be(4));
    if (t == 0xcb) return reinterpret<f64>(this.be(8));
    this.pos--;
    this.ok = false;
    return NaN;
  }

  int(): i64 {
    this.ok = true;
    const t = this.peek();
    if (t == 0xd3 || t == 0xcf) { this.pos++; return <i64>this.be(8); }
    const d = this.number();
    if (!this.ok || isNaN(d)) { this.ok = false; return 0; }
    return <i64>d;
  }

  u32(field: string): u32 {
    const v = this.int();
    if (!this.ok || v < 0 || v > 4294967295) { this.fail(field + ": not a uint"); return 0; }
    return <u32>v;
  }

  isStr(): bool {
    const t = this.peek();
    return (t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb;
  }

  str(field: string): string {
    const t = this.peek();
    let n: u64 = 0;
    if ((t & 0xe0) == 0xa0) { this.pos++; n = t & 0x1f; }
    else if (t == 0xd9) { this.pos++; n = this.be(1); }
    else if (t == 0xda) { this.pos++; n = this.be(2); }
    else if (t == 0xdb) { this.pos++; n = this.be(4); }
    else { this.fail(field + ": not a string"); return ""; }
    if (!this.need(<usize>n)) return "";
    const s = String.UTF8.decodeUnsafe(this.pos, <usize>n);
    this.pos += <usize>n;
    return s;
  }

  array(field: string): i32 {
    const t = this.peek();
    let n: u64;
    if ((t & 0xf0) == 0x90) { this.pos++; n = t & 0x0f; }
    else if (t == 0xdc) { this.pos++; n = this.be(2); }
    else if (t == 0xdd) { this.pos++; n = this.be(4); }
    else { this.fail(field + ": not an array"); return 0; }
    // Each item takes at least one byte: a larger count is a lie.
    if (n > <u64>(this.end - this.pos)) { this.fail(field + ": longer than the message"); return 0; }
    return <i32>n;
  }

  map(field: string): i32 {
    const t = this.peek();
    let n: u64;
    if ((t & 0xf0) == 0x80) { this.pos++; n = t & 0x0f; }
    else if (t == 0xde) { this.pos++; n = this.be(2); }
    else if (t == 0xdf) { this.pos++; n = this.be(4); }
    else { this.fail(field + ": not a map"); return 0; }
    if (n > <u64>(this.end - this.pos)) { this.fail(field + ": longer than the message"); return 0; }
    return <i32>n;
  }

  bytes(field: string): Uint8Array | null {
    const t = this.peek();
    let n: u64;
    if (t == 0xc0) { this.pos++; return null; }
    if (t == 0xc4) { this.pos++; n = this.be(1); }
    else if (t == 0xc5) { this.pos++; n = this.be(2); }
    else if (t == 0xc6) { this.pos++; n = this.be(4); }
    else if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
      // Some writers send bytes as an array of small integers.
      const count = this.array(field);
      const out = new Uint8Array(count);
      for (let i = 0; i < count && this.err === null; i++) out[i] = <u8>this.u32(field);
      return out;
    } else { this.fail(field + ": not bytes"); return null; }
    if (!this.need(<usize>n)) return null;
    const out = new Uint8Array(<i32>n);
    memory.copy(out.dataStart, this.pos, <usize>n);
    this.pos += <usize>n;
    return out;
  }

  params(): Params {
    const out = new Params();
    const n = this.map("params");
    for (let i = 0; i < n && this.err === null; i++) {
      const p = new Param();
      p.name = this.str("params: a name");
      const t = this.peek();
      if (t == 0xc2 || t == 0xc3) { p.kind = ParamKind.Bool; p.boolean = t == 0xc3; this.pos++; }
      else if (this.isStr()) { p.kind = ParamKind.Text; p.text = this.str("params"); }
      else {
        p.kind = ParamKind.Number;
        if (t == 0xc0) this.ok = false;
        else p.number = this.number();
        if (!this.ok) { this.fail("params: a value is not a bool, number or string"); break; }
      }
      out.items.push(p);
    }
    return out;
  }

  metric(): Metric {
    const m = new Metric();
    const n = this.map("metrics: an item");
    for (let i = 0; i < n && this.err === null; i++) {
      const key = this.str("metric: a key");
      if (key == "name") m.name = this.str("metric.name");
      else if (key == "target_per_pod") { m.targetPerPod = this.number(); if (!this.ok) this.fail("metric.target_per_pod: not a number"); }
      else if (key == "interval_seconds") { m.intervalSeconds = this.number(); if (!this.ok) this.fail("metric.interval_seconds: not a number"); }
      else if (key == "end") { m.end = this.int(); if (!this.ok) this.fail("metric.end: not an integer"); }
      else if (key == "values") {
        const count = this.array("metric.values");
        const v = new Float64Array(count);
        for (let j = 0; j < count && this.err === null; j++) {
          unchecked(v[j] = this.number());
          if (!this.ok) this.fail("metric.values: not a number");
        }
        m.values = v;
      } else this.skip();
    }
    return m;
  }

  request(): Request {
    const req = new Request();
    const n = this.map("request");
    for (let i = 0; i < n && this.err === null; i++) {
      const key = this.str("request: a key");
      if (key == "abi_version") req.abiVersion = this.u32("abi_version");
      else if (key == "now") { req.now = this.int(); if (!this.ok) this.fail("now: not an integer"); }
      else if (key == "workload") {
        const m = this.map("workload");
        for (let j = 0; j < m && this.err === null; j++) {
          const k = this.str("workload: a key");
          if (k == "namespace") req.namespace = this.str("workload.namespace");
          else if (k == "name") req.name = this.str("workload.name");
          else this.skip();
        }
      } else if (key == "replicas") {
        const m = this.map("replicas");
        for (let j = 0; j < m && this.err === null; j++) {
          const k = this.str("replicas: a key");
          if (k == "current") req.current = this.u32("replicas.current");
          else if (k == "ready") req.ready = this.u32("replicas.ready");
          else if (k == "min") req.min = this.u32("replicas.min");
          else if (k == "max") req.max = this.u32("replicas.max");
          else this.skip();
        }
      } else if (key == "metrics") {
        const count = this.array("metrics");
        for (let j = 0; j < count && this.err === null; j++) req.metrics.push(this.metric());
      } else if (key == "ready_times") {
        const count = this.array("ready_times");
        for (let j = 0; j < count && this.err === null; j++) {
          const rt = new ReadyTime();
          const m = this.map("ready_times: an item");
          for (let k = 0; k < m && this.err === null; k++) {
            const f = this.str("ready_times: a key");
            if (f == "started_at") { rt.startedAt = this.int(); if (!this.ok) this.fail("ready_times.started_at: not an integer"); }
            else if (f == "ready_seconds") { rt.readySeconds = this.number(); if (!this.ok) this.fail("ready_times.ready_seconds: not a number"); }
            else this.skip();
          }
          req.readyTimes.push(rt);
        }
      } else if (key == "params") req.params = this.params();
      else if (key == "state") req.state = this.bytes("state");
      else this.skip();
    }
    return req;
  }
}

// ---- MessagePack writer. ----

class Writer {
  buf: Uint8Array = new Uint8Array(256);
  len: i32 = 0;

  reserve(n: i32): void {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array((this.buf.length + n) * 2);
    memory.copy(grown.dataStart, this.buf.dataStart, <usize>this.len);
    this.buf = grown;
  }

  u8(b: u32): void {
    this.reserve(1);
    unchecked(this.buf[this.len++] = <u8>b);
  }

  be(v: u64, n: i32): void {
    for (let i = n - 1; i >= 0; i--) this.u8(<u32>((v >> (<u64>(8 * i))) & 0xff));
  }

  raw(ptr: usize, n: i32): void {
    this.reserve(n);
    memory.copy(this.buf.dataStart + <usize>this.len, ptr, <usize>n);
    this.len += n;
  }

  uint(v: u64): void {
    if (v < 128) this.u8(<u32>v);
    else if (v < 256) { this.u8(0xcc); this.be(v, 1); }
    else if (v < 65536) { this.u8(0xcd); this.be(v, 2); }
    else if (v <= 0xffffffff) { this.u8(0xce); this.be(v, 4); }
    else { this.u8(0xcf); this.be(v, 8); }
  }

  int(v: i64): void {
    if (v >= 0) this.uint(<u64>v);
    else { this.u8(0xd3); this.be(<u64>v, 8); }
  }

  f64(v: f64): void {
    this.u8(0xcb);
    this.be(reinterpret<u64>(v), 8);
  }

  str(s: string): void {
    const bytes = String.UTF8.encode(s);
    const n = bytes.byteLength;
    if (n < 32) this.u8(0xa0 | <u32>n);
    else if (n < 256) { this.u8(0xd9); this.be(<u64>n, 1); }
    else if (n < 65536) { this.u8(0xda); this.be(<u64>n, 2); }
    else { this.u8(0xdb); this.be(<u64>n, 4); }
    this.raw(changetype<usize>(bytes), n);
  }

  response(r: Response): void {
    const error = r.error;
    if (error !== null) {
      this.u8(0x81);
      this.str("error");
      this.str(error);
      return;
    }
    const state = r.state;
    const forecast = r.forecast;
    this.u8(0x80 | (2 + (state !== null ? 1 : 0) + (forecast !== null ? 1 : 0)));
    this.str("replicas");
    let n = r.replicas;
    if (!(n > 0)) n = 0;
    if (n > 4294967295) n = 4294967295;
    this.uint(<u64>Math.floor(n));
    this.str("reason");
    this.str(r.reason);
    if (state !== null) {
      const len = state.length;
      this.str("state");
      if (len < 256) { this.u8(0xc4); this.be(<u64>len, 1); }
      else if (len < 65536) { this.u8(0xc5); this.be(<u64>len, 2); }
      else { this.u8(0xc6); this.be(<u64>len, 4); }
      this.raw(state.dataStart, len);
    }
    if (forecast !== null) {
      this.str("forecast");
      this.u8(0x83);
      this.str("start");
      this.int(forecast.start);
      this.str("interval_seconds");
      this.f64(forecast.intervalSeconds);
      this.str("values");
      const count = forecast.values.length;
      if (count < 16) this.u8(0x90 | <u32>count);
      else if (count < 65536) { this.u8(0xdc); this.be(<u64>count, 2); }
      else { this.u8(0xdd); this.be(<u64>count, 4); }
      for (let i = 0; i < count; i++) this.f64(unchecked(forecast.values[i]));
    }
  }
}

// ---- ABI exports (re-export them from your entry file). ----

// The request buffer and the last response, alive until the host's next call.
let input: ArrayBuffer | null = null;
let output: Writer | null = null;

/** ABI: the version this SDK speaks. */
export function leadtime_abi_version(): i32 {
  return 1;
}

/** ABI: a buffer of `len` bytes for the host to write the next payload into. */
export function leadtime_alloc(len: i32): usize {
  // Nothing of the previous call is needed any more: drop it and collect, so that a long-lived
  // instance does not grow (the minimal runtime collects only when asked).
  input = null;
  output = null;
  __collect();
  const buf = new ArrayBuffer(len > 0 ? len : 0);
  input = buf;
  return changetype<usize>(buf);
}

/** ABI: checks the params; 0 accepts them. */
export function leadtime_init(ptr: usize, len: i32): i32 {
  const r = new Reader(ptr, <usize>len);
  const params = r.params();
  const err = r.err;
  if (err !== null) {
    log(ERROR, err);
    return 1;
  }
  const why = initFn(params);
  if (why !== null) {
    log(ERROR, why);
    return 1;
  }
  return 0;
}

/** ABI: decodes the request, runs the policy, encodes the response. */
export function leadtime_decide(ptr: usize, len: i32): i64 {
  const r = new Reader(ptr, <usize>len);
  const req = r.request();
  const err = r.err;
  const resp = err !== null ? Response.fail("request: " + err) : decideFn(req);
  const w = new Writer();
  w.response(resp);
  output = w;
  return (<i64>w.buf.dataStart << 32) | <i64>w.len;
}
