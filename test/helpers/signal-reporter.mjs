// A wrapped program for the tests: prints "ready", then the name of each signal it receives, one a line.
// It exits with the code given as its first argument when it receives SIGTERM.
const exitCode = Number(process.argv[2] ?? 0);
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"]) {
  process.on(signal, () => {
    process.stdout.write(`${signal}\n`);
    if (signal === "SIGTERM") process.exit(exitCode);
  });
}
process.stdout.write("ready\n");
// Orphaned when proa dies before passing SIGTERM on (a test that fails): exit rather than linger after the test run.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(1), 200);
