// Preloaded into proa (node --require) by test/security.test.ts: records every file proa opens, reads, lists, stats or
// writes through node:fs, every outgoing connection, and every environment variable it looks up, as JSON lines
// appended to $PROA_TEST_IO_RECORD. The bundle calls fs's functions through the module object at call time, so
// replacing them here sees every call.
"use strict";
const fs = require("node:fs");
const net = require("node:net");

// Opened once, before anything is replaced, and written by descriptor: recording never records itself.
const recordFd = fs.openSync(process.env.PROA_TEST_IO_RECORD, "a");
const write = fs.writeSync;
const record = (kind, target) => write(recordFd, JSON.stringify({ kind, target: String(target) }) + "\n");
const isWrite = (flags) =>
  (typeof flags === "string" && /[wa+]/.test(flags)) ||
  (typeof flags === "number" && (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR)) !== 0);

const wrap = (object, name, kindOf) => {
  const original = object[name];
  if (typeof original !== "function") return;
  object[name] = function (...args) {
    if (typeof args[0] === "string" || args[0] instanceof URL || Buffer.isBuffer(args[0]))
      record(kindOf(args), args[0]);
    return original.apply(this, args);
  };
};

const reading = () => "read";
const writing = () => "write";
const byFlags = (args) => (isWrite(args[1]) ? "write" : "read");
for (const name of [
  "readFileSync",
  "readFile",
  "readdirSync",
  "readdir",
  "readlinkSync",
  "readlink",
  "createReadStream",
  "opendirSync",
  "opendir",
])
  wrap(fs, name, reading);
for (const name of [
  "writeFileSync",
  "writeFile",
  "appendFile",
  "createWriteStream",
  "mkdirSync",
  "mkdir",
  "renameSync",
  "rename",
  "unlinkSync",
  "unlink",
  "rmSync",
  "rm",
  "copyFileSync",
  "copyFile",
  "symlinkSync",
  "truncateSync",
  "chmodSync",
])
  wrap(fs, name, writing);
for (const name of ["openSync", "open"]) wrap(fs, name, byFlags);
// A look without opening (--check's look at the termination log): recorded apart from reads.
for (const name of ["statSync", "lstatSync", "stat", "lstat", "existsSync", "accessSync", "access"])
  wrap(fs, name, () => "stat");
for (const name of ["readFile", "readdir", "readlink", "opendir"]) wrap(fs.promises, name, reading);
for (const name of ["writeFile", "appendFile", "mkdir", "rename", "unlink", "rm", "copyFile", "truncate"])
  wrap(fs.promises, name, writing);
wrap(fs.promises, "open", byFlags);
for (const name of ["stat", "lstat", "access"]) wrap(fs.promises, name, () => "stat");

// Every TCP connection, whoever makes it (http, https, tls): net.Socket's connect gets the normalised options.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (options && typeof options === "object") record("connect", options.path ?? `${options.host}:${options.port}`);
  return connect.apply(this, args);
};

// Every environment variable that proa's own code looks up: the caller of the lookup is in the bundle. (Node's
// internals read some too, such as spawn() copying the whole environment for the program.)
const fromBundle = () => /[/\\]proa\.js:\d+/.test((new Error().stack ?? "").split("\n")[3] ?? "");
const environment = process.env;
process.env = new Proxy(environment, {
  get(target, key) {
    if (typeof key === "string" && fromBundle()) record("env", key);
    return target[key];
  },
  has(target, key) {
    if (typeof key === "string" && fromBundle()) record("env", key);
    return key in target;
  },
});
