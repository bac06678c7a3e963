// Loaded with --import into each side of bench:drop: at exit, its peak RSS and CPU time go to stderr.
process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  // stderr is a pipe here, written synchronously on Linux: the lines are out before the process ends.
  process.stderr.write(
    `\nBENCH_MAXRSS_KIB=${process.resourceUsage().maxRSS}\nBENCH_CPU_MS=${Math.round((user + system) / 1000)}\n`,
  );
});
