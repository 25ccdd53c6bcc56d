/**
 * Extra Node flags for the processes tsparallel spawns (controller, engines), from
 * `TSPARALLEL_NODE_FLAGS`, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". Node refuses
 * `--cpu-prof` in NODE_OPTIONS, so profiling a whole cluster needs this door.
 */
export function nodeFlags(): string[] {
  return (process.env.TSPARALLEL_NODE_FLAGS ?? "").split(/\s+/).filter((f) => f.length > 0);
}
