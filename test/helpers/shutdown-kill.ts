// Runs inside a fresh PID namespace (test/shutdown-kill.test.ts): starts `sleep`-like processes under the names given,
// runs the shutdown step's --kill/--kill-all part on them and prints one JSON line: which processes SIGTERM ended, and
// what was logged. Processes still alive afterwards are killed, so nothing outlives the test.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { shutDownSidecars } from "../../shutdown.ts";
import { recordingLog } from "./shutdown-log.ts";

interface Request {
  /** Executables to start, each as `executable 60`. */
  start: string[];
  /** Index into `start` of the process to pass as the wrapped program's pid. */
  child?: number;
  kill: string[];
  killAll: boolean;
  /** Start the processes as this user, then drop to it before the shutdown step (as a non-root container runs). */
  uid?: number;
}

const request = JSON.parse(process.argv[2] ?? "{}") as Request;
const user = request.uid === undefined ? {} : { uid: request.uid, gid: request.uid };
const children: ChildProcess[] = request.start.map((executable) =>
  spawn(executable, ["60"], { stdio: "ignore", ...user }),
);
await Promise.all(children.map((child) => once(child, "spawn")));
if (request.uid !== undefined) {
  process.setgid!(request.uid);
  process.setuid!(request.uid);
}

const log = recordingLog();
const childPid = request.child === undefined ? undefined : children[request.child]?.pid;
const options = {
  httpGet: [],
  httpPost: [],
  kill: request.kill,
  killAll: request.killAll,
  requestTimeoutMs: 1000,
  userAgent: "proa/test",
};
await shutDownSidecars(options, { childPid }, log);

// SIGTERM ends `sleep` at once; give the exits a moment to be reaped.
const sent = log.lines.filter((line) => line.msg.startsWith("sent SIGTERM")).length;
const ended = () => children.filter((child) => child.exitCode !== null || child.signalCode !== null).length;
for (const until = Date.now() + 1000; ended() < sent && Date.now() < until;) await sleep(10);
const signals = children.map((child) => child.signalCode);
for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
process.stdout.write(
  `${JSON.stringify({ pid: process.pid, childPids: children.map((child) => child.pid), signals, logs: log.lines })}\n`,
);
