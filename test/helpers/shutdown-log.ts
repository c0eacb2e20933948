// A Log that keeps every line, for the shutdown tests to assert on.
import type { Fields, Level, Log } from "../../log.ts";

export interface LogLine {
  level: Level;
  msg: string;
  fields: Fields;
}

export function recordingLog(): Log & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: Level) =>
    (msg: string, fields: Fields = {}) =>
      void lines.push({ level, msg, fields });
  return { lines, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
