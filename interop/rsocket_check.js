#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Hold the library's Rocket frame codec against rsocket-js (the npm package
// rsocket-core), over seeded random frames of every type the library emits:
//
//   ours -> rsocket-js   the library encodes (through rfd-codec-driver),
//                        rsocket-js decodes, every field must equal the frame
//                        asked for; fragmented messages are cut by the
//                        library, each fragment decoded by rsocket-js, checked
//                        against the fragmentation rules of spec section 4.5
//                        and reassembled both by this script and by
//                        rsocket-js's ReassemblyDuplexConnection;
//   rsocket-js -> ours   rsocket-js encodes, the library decodes, every field
//                        must equal; messages fragmented here (by the rules of
//                        4.5, each fragment encoded by rsocket-js) must come
//                        out of the library's reassembly whole.
//
// rsocket-js reads and writes ERROR data as UTF-8 text, so binary ERROR data
// is compared on the raw bytes, outside it.
//
// Exit status: 0 all agree, 1 a disagreement, 2 usage error, 77 skipped
// (rsocket-core is not installed).
'use strict';

const childProcess = require('child_process');
const path = require('path');

const SKIP = 77;
const RSOCKET_VERSION = '0.0.27';
const MAX_REPORTED = 10;
const MAX_SHOWN = 300;

const TYPE = {
  SETUP: 0x01,
  KEEPALIVE: 0x03,
  REQUEST_RESPONSE: 0x04,
  REQUEST_FNF: 0x05,
  REQUEST_STREAM: 0x06,
  REQUEST_CHANNEL: 0x07,
  REQUEST_N: 0x08,
  CANCEL: 0x09,
  PAYLOAD: 0x0a,
  ERROR: 0x0b,
  METADATA_PUSH: 0x0c,
};
const FLAG = {METADATA: 0x100, FOLLOWS: 0x80, COMPLETE: 0x40, NEXT: 0x20};
const RESPOND = FLAG.FOLLOWS;
const RESUME_ENABLE = FLAG.FOLLOWS;
const LEASE = FLAG.COMPLETE;
const U31_MAX = 0x7fffffff;
// The library cuts fragments here: 0xFFFFFF - 512 bytes per frame.
const FRAGMENT_DEFAULT = 0xffffff - 512;
const PAYLOAD_TYPES = [
  TYPE.REQUEST_RESPONSE,
  TYPE.REQUEST_FNF,
  TYPE.REQUEST_STREAM,
  TYPE.REQUEST_CHANNEL,
  TYPE.PAYLOAD,
];
const BYTE_KEYS = new Set(['token', 'mdmime', 'datamime', 'metadata', 'data']);
const METADATA_MIME = 'application/x-rocket-metadata+compact';
const DATA_MIME = 'application/x-rocket-payload';
const ERROR_CODES = [0x1, 0x2, 0x3, 0x101, 0x102, 0x201, 0x202, 0x203, 0x204];

function usage(out) {
  out.write(
    'usage: node rsocket_check.js --driver PATH --modules DIR\n' +
      '                             [--seed N] [--count N] [--no-large]\n' +
      '  --driver PATH  the rfd-codec-driver program\n' +
      `  --modules DIR  node_modules directory holding rsocket-core@${RSOCKET_VERSION}\n` +
      '  --seed N       random seed (default: a new one, printed)\n' +
      '  --count N      random frames per frame type and direction (default 300)\n' +
      '  --no-large     leave out the two messages above 16 MiB\n',
  );
}

function parseArgs(argv) {
  const args = {count: 300, large: true};
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--driver':
        args.driver = next();
        break;
      case '--modules':
        args.modules = next();
        break;
      case '--seed':
        args.seed = Number(next()) >>> 0;
        break;
      case '--count':
        args.count = Number(next());
        break;
      case '--no-large':
        args.large = false;
        break;
      case '-h':
      case '--help':
        usage(process.stdout);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.driver || !args.modules) throw new Error('--driver and --modules are required');
  return args;
}

// A small seeded generator (mulberry32): the same seed gives the same frames.
class Random {
  constructor(seed) {
    this.state = seed >>> 0;
  }
  u32() {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  below(n) {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  range(lo, hi) {
    return lo + this.below(hi - lo + 1);
  }
  chance(p = 0.5) {
    return this.u32() / 0x100000000 < p;
  }
  pick(list) {
    return list[this.below(list.length)];
  }
  bytes(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  // Positive 31-bit values, biased to the edges.
  u31() {
    if (this.chance(0.3)) return this.pick([1, 2, 127, 128, 255, 256, 65535, U31_MAX]);
    return this.range(1, U31_MAX);
  }
  size() {
    const r = this.u32() / 0x100000000;
    if (r < 0.03) return this.range(4096, 70000);
    if (r < 0.15) return this.pick([0, 1, 2, 255, 256]);
    return this.range(0, 64);
  }
  ascii(n) {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.range(0x20, 0x7e));
    return s;
  }
  utf8Text() {
    const words = ['fd mismatch', 'rejected by harness', 'dépassé', '⚠ fds lost', 'CTRUNC', ''];
    let s = '';
    for (let n = this.range(0, 4); n > 0; n--) s += this.pick(words) + ' ';
    return s;
  }
}

// Frames are described as the driver sees them: a "model" with type, stream,
// flags (the METADATA flag set exactly when metadata is not null), the
// type's fields, and Buffers for bytes.

function metadataOrNull(rng) {
  if (!rng.chance(0.6)) return null;
  return rng.bytes(rng.size());
}

function withMetadata(model) {
  model.flags &= ~FLAG.METADATA;
  if (model.metadata !== null) model.flags |= FLAG.METADATA;
  return model;
}

function randomModel(rng, type) {
  const m = {type, stream: 0, flags: 0};
  switch (type) {
    case TYPE.SETUP:
      m.flags = (rng.chance(0.3) ? RESUME_ENABLE : 0) | (rng.chance(0.2) ? LEASE : 0);
      m.major = rng.range(0, 65535);
      m.minor = rng.range(0, 65535);
      m.keepalive = rng.u31();
      m.lifetime = rng.u31();
      // rsocket-js sizes its buffer without the token's length field when the token is empty.
      m.token = m.flags & RESUME_ENABLE ? rng.bytes(rng.range(1, 300)) : null;
      m.mdmime = rng.chance() ? METADATA_MIME : rng.ascii(rng.range(0, 255));
      m.datamime = rng.chance() ? DATA_MIME : rng.ascii(rng.range(0, 255));
      m.metadata = metadataOrNull(rng);
      m.data = rng.bytes(rng.size());
      return withMetadata(m);
    case TYPE.KEEPALIVE:
      m.flags = rng.chance() ? RESPOND : 0;
      // rsocket-js holds the position in a JS number: 53 bits.
      m.position = rng.chance(0.3)
        ? rng.pick([0, 1, 2 ** 32, 2 ** 53 - 1])
        : rng.range(0, 2 ** 31) * 2 ** 21 + rng.range(0, 2 ** 21 - 1);
      m.data = rng.bytes(rng.size());
      return m;
    case TYPE.REQUEST_RESPONSE:
    case TYPE.REQUEST_FNF:
    case TYPE.REQUEST_STREAM:
    case TYPE.REQUEST_CHANNEL:
    case TYPE.PAYLOAD:
      m.stream = rng.u31();
      m.flags = randomPayloadFlags(rng, type);
      if (type === TYPE.REQUEST_STREAM || type === TYPE.REQUEST_CHANNEL) m.u32 = rng.u31();
      m.metadata = metadataOrNull(rng);
      m.data = rng.bytes(rng.size());
      return withMetadata(m);
    case TYPE.REQUEST_N:
      m.stream = rng.u31();
      m.u32 = rng.u31();
      return m;
    case TYPE.CANCEL:
      m.stream = rng.u31();
      return m;
    case TYPE.ERROR:
      m.stream = rng.chance(0.3) ? 0 : rng.u31();
      m.u32 = rng.chance(0.7) ? rng.pick(ERROR_CODES) : rng.u31();
      m.text = rng.chance(0.5);
      m.data = m.text ? Buffer.from(rng.utf8Text(), 'utf8') : rng.bytes(rng.size());
      return m;
    case TYPE.METADATA_PUSH:
      m.flags = FLAG.METADATA;
      m.metadata = rng.bytes(rng.size());
      return m;
    default:
      throw new Error(`no generator for type ${type}`);
  }
}

// Flags defined for a payload-carrying type (spec 4.3); a PAYLOAD has NEXT or COMPLETE.
function randomPayloadFlags(rng, type) {
  let flags = rng.chance(0.2) ? FLAG.FOLLOWS : 0;
  if (type === TYPE.REQUEST_CHANNEL && rng.chance()) flags |= FLAG.COMPLETE;
  if (type === TYPE.PAYLOAD)
    flags |= rng.pick([FLAG.NEXT, FLAG.COMPLETE, FLAG.NEXT | FLAG.COMPLETE]);
  return flags;
}

function hasU32(type) {
  return [TYPE.REQUEST_STREAM, TYPE.REQUEST_CHANNEL, TYPE.REQUEST_N, TYPE.ERROR].includes(type);
}

// The fields rfd-codec-driver prints for a frame (or a reassembled message).
function driverView(m) {
  const v = {type: m.type, stream: m.stream, flags: m.flags};
  if (hasU32(m.type)) v.u32 = m.u32;
  if (m.type === TYPE.SETUP) {
    Object.assign(v, {major: m.major, minor: m.minor});
    Object.assign(v, {keepalive: m.keepalive, lifetime: m.lifetime});
    if (m.flags & RESUME_ENABLE) v.token = m.token.toString('hex');
    v.mdmime = Buffer.from(m.mdmime, 'latin1').toString('hex');
    v.datamime = Buffer.from(m.datamime, 'latin1').toString('hex');
  }
  if (m.type === TYPE.KEEPALIVE) v.position = String(m.position);
  if (m.metadata !== null && m.metadata !== undefined) v.metadata = m.metadata.toString('hex');
  if (m.data !== undefined) v.data = m.data.toString('hex');
  return v;
}

function driverFields(m) {
  const v = driverView(m);
  return Object.entries(v)
    .map(([k, val]) => `${k}=${val}`)
    .join(' ');
}

function parseOk(line) {
  if (!line.startsWith('ok')) throw new Error(`driver answered: ${shown(line)}`);
  const fields = {};
  for (const word of line.split(' ').slice(1)) {
    const eq = word.indexOf('=');
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    fields[key] = BYTE_KEYS.has(key) || key === 'position' ? value : Number(value);
  }
  return fields;
}

function okHex(line) {
  if (!line.startsWith('ok ')) throw new Error(`driver answered: ${shown(line)}`);
  return Buffer.from(line.slice(3), 'hex');
}

function shown(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN)}... (${text.length} chars)`;
}

function hexOf(b) {
  return b === null || b === undefined ? '' : Buffer.from(b).toString('hex');
}

function compareViews(expected, got) {
  const problems = [];
  for (const key of new Set([...Object.keys(expected), ...Object.keys(got)])) {
    const want = String(expected[key]);
    const have = String(got[key]);
    if (want !== have) problems.push(`${key}: expected ${shown(want)}, got ${shown(have)}`);
  }
  return problems;
}

// rsocket-js -> model fields, for comparing what rsocket-js decoded with what was asked for.
function rsocketView(frame, raw) {
  const v = {type: frame.type, stream: frame.streamId, flags: frame.flags};
  switch (frame.type) {
    case TYPE.SETUP:
      Object.assign(v, {
        major: frame.majorVersion,
        minor: frame.minorVersion,
        keepalive: frame.keepAlive,
        lifetime: frame.lifetime,
      });
      if (frame.flags & RESUME_ENABLE) v.token = hexOf(frame.resumeToken);
      v.mdmime = Buffer.from(frame.metadataMimeType, 'latin1').toString('hex');
      v.datamime = Buffer.from(frame.dataMimeType, 'latin1').toString('hex');
      break;
    case TYPE.KEEPALIVE:
      v.position = String(frame.lastReceivedPosition);
      break;
    case TYPE.REQUEST_STREAM:
    case TYPE.REQUEST_CHANNEL:
    case TYPE.REQUEST_N:
      v.u32 = frame.requestN;
      break;
    case TYPE.ERROR:
      v.u32 = frame.code;
      break;
    default:
  }
  // rsocket-js gives null for empty metadata and data; the driver prints them empty.
  if (frame.flags & FLAG.METADATA) v.metadata = hexOf(frame.metadata);
  if ('data' in frame) v.data = hexOf(frame.data);
  if (frame.type === TYPE.ERROR) v.data = raw.slice(13).toString('hex');
  return v;
}

function toRsocketFrame(m) {
  const f = {type: m.type, streamId: m.stream, flags: m.flags};
  switch (m.type) {
    case TYPE.SETUP:
      Object.assign(f, {
        majorVersion: m.major,
        minorVersion: m.minor,
        keepAlive: m.keepalive,
        lifetime: m.lifetime,
        resumeToken: m.token,
        metadataMimeType: m.mdmime,
        dataMimeType: m.datamime,
      });
      break;
    case TYPE.KEEPALIVE:
      f.lastReceivedPosition = m.position;
      break;
    case TYPE.REQUEST_STREAM:
    case TYPE.REQUEST_CHANNEL:
    case TYPE.REQUEST_N:
      f.requestN = m.u32;
      break;
    case TYPE.ERROR:
      f.code = m.u32;
      f.message = m.text ? m.data.toString('utf8') : '';
      return f;
    default:
  }
  if (m.metadata !== undefined) f.metadata = m.metadata;
  if (m.data !== undefined) f.data = m.data;
  return f;
}

function serializeWithRsocket(rs, m) {
  const frame = rs.serializeFrameWithLength(toRsocketFrame(m), rs.BufferEncoders);
  if (m.type !== TYPE.ERROR || m.text) return frame;
  // Binary ERROR data: rsocket-js can only write text, so the bytes go on outside it.
  const whole = Buffer.concat([frame, m.data]);
  whole.writeUIntBE(whole.length - 3, 0, 3);
  return whole;
}

// Checks of single frames.

function caseOursToRsocket(rs, m) {
  return {
    label: `ours->rsocket-js type ${m.type} ${shown(driverFields(m))}`,
    command: `frame-encode ${driverFields(m)}`,
    check(line) {
      const raw = okHex(line);
      if (raw.readUIntBE(0, 3) !== raw.length - 3) return ['length field does not match the frame'];
      const frame = rs.deserializeFrameWithLength(raw, rs.BufferEncoders);
      const problems = compareViews(driverView(m), rsocketView(frame, raw));
      if (m.type === TYPE.ERROR && m.text && frame.message !== m.data.toString('utf8'))
        problems.push(`ERROR text: rsocket-js read ${shown(frame.message)}`);
      return problems;
    },
  };
}

function caseRsocketToOurs(rs, m) {
  const raw = serializeWithRsocket(rs, m);
  return {
    label: `rsocket-js->ours type ${m.type} ${shown(raw.toString('hex'))}`,
    command: `frame-decode ${raw.toString('hex')}`,
    check(line) {
      return compareViews(driverView(m), parseOk(line));
    },
  };
}

// Fragmentation.

function randomMessage(rng, type, sizes) {
  const m = randomModel(rng, type);
  m.flags &= ~FLAG.FOLLOWS;
  // Spec 4.4: the METADATA flag only with at least one metadata byte.
  if (m.metadata !== null && m.metadata.length === 0) m.metadata = null;
  if (sizes) {
    m.metadata = sizes.metadata === null ? null : rng.bytes(sizes.metadata);
    m.data = Buffer.alloc(sizes.data, 0x78);
  } else if (rng.chance(0.7)) {
    m.data = rng.bytes(rng.range(0, 3000));
  }
  return withMetadata(m);
}

function fixedSize(type) {
  return type === TYPE.REQUEST_STREAM || type === TYPE.REQUEST_CHANNEL ? 10 : 6;
}

function splitFrames(raw) {
  const frames = [];
  for (let at = 0; at < raw.length; ) {
    if (at + 3 > raw.length) throw new Error('truncated length field');
    const end = at + 3 + raw.readUIntBE(at, 3);
    if (end > raw.length) throw new Error('truncated frame');
    frames.push(raw.slice(at, end));
    at = end;
  }
  return frames;
}

// Spec 4.5 checks of the library's fragments, decoded by rsocket-js.
function checkFragments(rs, m, maxFrame, raw) {
  const problems = [];
  const pieces = splitFrames(raw);
  const frames = pieces.map(p => rs.deserializeFrameWithLength(p, rs.BufferEncoders));
  const [all, rest] = rs.deserializeFrames(raw, rs.BufferEncoders);
  if (rest.length !== 0 || all.length !== frames.length)
    problems.push(`rsocket-js splits them into ${all.length} frames and ${rest.length} bytes`);
  const metadata = [];
  const data = [];
  let sawData = false;
  let anyMetadata = false;
  frames.forEach((f, i) => {
    const last = i === frames.length - 1;
    const where = `fragment ${i + 1}/${frames.length}`;
    if (pieces[i].length > maxFrame)
      problems.push(`${where}: ${pieces[i].length} bytes > ${maxFrame}`);
    if (f.streamId !== m.stream) problems.push(`${where}: stream ${f.streamId}`);
    if (f.type !== (i === 0 ? m.type : TYPE.PAYLOAD)) problems.push(`${where}: type ${f.type}`);
    if (Boolean(f.flags & FLAG.FOLLOWS) === last) problems.push(`${where}: FOLLOWS is wrong`);
    if (i > 0) {
      const next = m.type === TYPE.PAYLOAD ? m.flags & FLAG.NEXT : FLAG.NEXT;
      if ((f.flags & FLAG.NEXT) !== next) problems.push(`${where}: NEXT is wrong`);
    }
    const complete = last ? m.flags & FLAG.COMPLETE : 0;
    if ((f.flags & FLAG.COMPLETE) !== complete) problems.push(`${where}: COMPLETE is wrong`);
    if (i === 0 && 'u32' in m && f.requestN !== m.u32)
      problems.push(`${where}: requestN ${f.requestN}`);
    const md = f.metadata ? Buffer.from(f.metadata) : Buffer.alloc(0);
    const dt = f.data ? Buffer.from(f.data) : Buffer.alloc(0);
    if (Boolean(f.flags & FLAG.METADATA) !== md.length > 0)
      problems.push(`${where}: METADATA flag without metadata bytes, or bytes without the flag`);
    if (md.length > 0 && sawData) problems.push(`${where}: metadata after data`);
    if (md.length > 0) anyMetadata = true;
    if (dt.length > 0) sawData = true;
    metadata.push(md);
    data.push(dt);
  });
  if (anyMetadata !== (m.metadata !== null)) problems.push('METADATA flag of the message is lost');
  if (hexOf(Buffer.concat(metadata)) !== hexOf(m.metadata))
    problems.push('reassembled metadata differs');
  if (hexOf(Buffer.concat(data)) !== hexOf(m.data)) problems.push('reassembled data differs');
  problems.push(...reassembleWithRsocket(frames, m));
  return problems;
}

// rsocket-js's own reassembly over the same frames.
function reassembleWithRsocket(frames, m) {
  const reassembly = path.join(modulesDir, 'rsocket-core/build/ReassemblyDuplexConnection');
  const {ReassemblyDuplexConnection} = require(reassembly);
  const {Flowable} = require(path.join(modulesDir, 'rsocket-flowable'));
  const source = {receive: () => Flowable.just(...frames)};
  const out = [];
  new ReassemblyDuplexConnection(source).receive().subscribe({
    onNext: f => out.push(f),
    onSubscribe: s => s.request(Number.MAX_SAFE_INTEGER),
  });
  if (out.length !== 1) return [`rsocket-js's reassembly gives ${out.length} messages`];
  const problems = [];
  if (hexOf(out[0].metadata) !== hexOf(m.metadata))
    problems.push("rsocket-js's reassembled metadata differs");
  if (hexOf(out[0].data) !== hexOf(m.data)) problems.push("rsocket-js's reassembled data differs");
  return problems;
}

function caseFragmentsOursToRsocket(rs, rng, type, sizes, maxFrame) {
  const m = randomMessage(rng, type, sizes);
  const max = maxFrame || rng.range(3 + fixedSize(type) + 3 + 1, 400);
  return {
    label: `ours->rsocket-js fragments of type ${type}, max ${max}: ${shown(driverFields(m))}`,
    command: `frame-fragment ${max} ${driverFields(m)}`,
    check: line => checkFragments(rs, m, max, okHex(line)),
  };
}

// Cut @m by the rules of 4.5 into fragments of at most @room metadata+data bytes each.
function fragmentHere(rng, m, room) {
  const md = m.metadata || Buffer.alloc(0);
  const dt = m.data;
  const total = md.length + dt.length;
  const fragments = [];
  for (let at = 0; at < total || fragments.length === 0; ) {
    const left = total - at;
    const take = room ? Math.min(room, left) : rng.range(1, Math.max(1, Math.min(600, left)));
    const mdPart = md.slice(Math.min(at, md.length), Math.min(at + take, md.length));
    const dtPart = dt.slice(Math.max(0, at - md.length), Math.max(0, at + take - md.length));
    at += take;
    const first = fragments.length === 0;
    const last = at >= total;
    const f = {type: first ? m.type : TYPE.PAYLOAD, stream: m.stream, flags: 0, data: dtPart};
    f.metadata = mdPart.length > 0 ? mdPart : null;
    if (first) {
      f.flags = m.flags & ~FLAG.METADATA;
      // NEXT and COMPLETE on a fragment with FOLLOWS mean nothing: keep or drop them at random.
      if (!last && rng.chance()) f.flags &= ~(FLAG.NEXT | FLAG.COMPLETE);
      if ('u32' in m) f.u32 = m.u32;
    } else {
      f.flags = m.type === TYPE.PAYLOAD ? m.flags & FLAG.NEXT : FLAG.NEXT;
      if (last) f.flags |= m.flags & FLAG.COMPLETE;
    }
    if (!last) f.flags |= FLAG.FOLLOWS;
    const bare = !(f.flags & (FLAG.NEXT | FLAG.COMPLETE));
    if (!last && f.type === TYPE.PAYLOAD && bare && rng.chance()) f.flags |= FLAG.NEXT;
    fragments.push(withMetadata(f));
  }
  return fragments;
}

function caseFragmentsRsocketToOurs(rs, rng, type, sizes, room) {
  const m = randomMessage(rng, type, sizes);
  const fragments = fragmentHere(rng, m, room);
  const raw = Buffer.concat(fragments.map(f => serializeWithRsocket(rs, f)));
  const expected = driverView(m);
  expected.fragments = fragments.length;
  return {
    label: `rsocket-js->ours ${fragments.length} fragments of type ${type}: ` +
      shown(driverFields(m)),
    command: `frame-reassemble ${raw.toString('hex')}`,
    check: line => compareViews(expected, parseOk(line)),
  };
}

function runDriver(driver, commands) {
  const done = childProcess.spawnSync(driver, [], {
    input: commands.join('\n') + '\n',
    maxBuffer: 1 << 30,
    encoding: 'latin1',
  });
  const lines = (done.stdout || '').split('\n');
  lines.pop();
  if (done.status !== 0 || lines.length !== commands.length) {
    console.error(
      `rsocket_check: ${driver} exited with ${done.status} after ${lines.length} of ` +
        `${commands.length} answers: ${done.stderr}`,
    );
    process.exit(1);
  }
  return lines;
}

let modulesDir;

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`rsocket_check: ${e.message}`);
    usage(process.stderr);
    process.exit(2);
  }
  modulesDir = path.resolve(args.modules);
  let rs;
  let version;
  try {
    rs = require(path.join(modulesDir, 'rsocket-core'));
    version = require(path.join(modulesDir, 'rsocket-core/package.json')).version;
  } catch (e) {
    console.log(
      `SKIP: rsocket-core is not installed in ${modulesDir} ` +
        `(npm install --prefix ${path.dirname(modulesDir)} rsocket-core@${RSOCKET_VERSION})`,
    );
    process.exit(SKIP);
  }
  const seed = args.seed !== undefined ? args.seed : Math.floor(Math.random() * 0x100000000);
  console.log(
    `rsocket_check: seed ${seed}, ${args.count} frames per type and direction; ` +
      `rsocket-core ${version}`,
  );
  const rng = new Random(seed);

  const cases = [];
  for (const type of Object.values(TYPE)) {
    for (let i = 0; i < args.count; i++) {
      cases.push(caseOursToRsocket(rs, randomModel(rng, type)));
      cases.push(caseRsocketToOurs(rs, randomModel(rng, type)));
    }
  }
  for (const type of PAYLOAD_TYPES) {
    for (let i = 0; i < Math.ceil(args.count / 3); i++) {
      cases.push(caseFragmentsOursToRsocket(rs, rng, type));
      cases.push(caseFragmentsRsocketToOurs(rs, rng, type));
    }
  }
  if (args.large) {
    // Above one frame at the library's real fragment size, as the echo-large scenario sends.
    const sizes = {metadata: 100, data: FRAGMENT_DEFAULT + 1000};
    cases.push(caseFragmentsOursToRsocket(rs, rng, TYPE.REQUEST_RESPONSE, sizes, FRAGMENT_DEFAULT));
    cases.push(caseFragmentsRsocketToOurs(rs, rng, TYPE.PAYLOAD, sizes, FRAGMENT_DEFAULT - 9));
  }

  const answers = runDriver(args.driver, cases.map(c => c.command));
  let failures = 0;
  const tally = {};
  cases.forEach((c, i) => {
    const direction = c.label.split(' ')[0];
    tally[direction] = (tally[direction] || 0) + 1;
    let problems;
    try {
      problems = c.check(answers[i]);
    } catch (e) {
      problems = [`${e.name}: ${shown(e.message)}`];
    }
    if (problems.length === 0) return;
    failures++;
    if (failures > MAX_REPORTED) return;
    console.log(`FAIL ${c.label}`);
    for (const p of problems.slice(0, 5)) console.log(`     ${p}`);
  });
  const counts = Object.entries(tally)
    .map(([d, n]) => `${n} ${d}`)
    .join(', ');
  const plural = failures === 1 ? '' : 's';
  console.log(`rsocket_check: ${counts}: ${failures} disagreement${plural} (seed ${seed})`);
  process.exit(failures ? 1 : 0);
}

main();
