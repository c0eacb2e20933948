// Runs the bundle, dist/proa.js, as a real process and lets a test watch its output.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

export const BUNDLE = fileURLToPath(new URL("../../dist/proa.js", import.meta.url));
export const SIGNAL_REPORTER = fileURLToPath(new URL("./signal-reporter.mjs", import.meta.url));

export interface LogRecord {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface ProaProcess {
  child: ChildProcess;
  /** The wrapped program's stdout, line by line (proa passes it through untouched). */
  stdout: string[];
  /** proa's own log records; a line that is not JSON fails the test when the process exits. */
  logs: LogRecord[];
  stderr: () => string;
  waitForStdout(line: string): Promise<void>;
  waitForLog(match: (record: LogRecord) => boolean): Promise<LogRecord>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startProa(
  args: string[],
  env: Record<string, string> = {},
  command: string[] = [process.execPath, BUNDLE],
): ProaProcess {
  const [program, ...programArgs] = command as [string, ...string[]];
  // Where proa cannot read its Pod's spec it would try /dev/termination-log: never the machine's own, in a test.
  const noTerminationLog = "/nonexistent/proa-test/termination-log";
  const child = spawn(program, [...programArgs, ...args], {
    env: { PATH: process.env.PATH ?? "", PROA_TERMINATION_MESSAGE_PATH: noTerminationLog, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const logs: LogRecord[] = [];
  let stderr = "";
  const waiters: (() => void)[] = [];
  const notify = () => waiters.splice(0).forEach((wake) => wake());
  lines(child.stdout!, (line) => {
    stdout.push(line);
    notify();
  });
  lines(child.stderr!, (line) => {
    stderr += line + "\n";
    try {
      logs.push(JSON.parse(line));
    } catch {
      logs.push({ level: "NOT JSON", msg: line });
    }
    notify();
  });
  let closed = false;
  const exit = once(child, "close").then(([code, signal]) => {
    closed = true;
    notify();
    return { code, signal };
  });
  // 'close' waits for stdout and stderr to close, which never happens if proa died and left its program holding them:
  // a second after proa itself has exited, a wait for a line that has not come fails instead of hanging.
  child.once("exit", () => setTimeout(() => ((closed = true), notify()), 1000).unref());
  const until = <T>(find: () => T | undefined, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) return resolve(found);
        if (closed) return reject(new Error(`proa exited before ${what}; stderr:\n${stderr}`));
        waiters.push(check);
      };
      check();
    });
  return {
    child,
    stdout,
    logs,
    stderr: () => stderr,
    waitForStdout: (line) =>
      until(() => (stdout.includes(line) ? true : undefined), `printing ${line}`).then(() => undefined),
    waitForLog: (match) => until(() => logs.find(match), "logging the expected line"),
    exit,
  };
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void) {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    parts.forEach(onLine);
  });
  stream.on("end", () => rest && onLine(rest));
}
