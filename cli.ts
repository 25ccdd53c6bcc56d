#!/usr/bin/env node
/** `tsparallel` dispatcher: each command's module is loaded only when used. */
import { TsParallelError } from "./protocol/errors";

const USAGE = `usage: tsparallel <command>
  start [-n N] [--port P] [--dir D]    kernelspec + cluster + JupyterLab on notebooks/ (npm start)
  install [--user | --prefix P]       register the Jupyter kernel "TypeScript (tsparallel)"
  kernel --config-path F              the kernel itself (Jupyter starts it)
  cluster start [-n N] [--profile P] [--daemon] [--restart-engines] [--ip A] [--curve] [--engines KIND …]
  cluster engines -n N [--profile P] [--engines KIND …]   add an engine set to a running cluster
  cluster stop [--profile P]          stop a cluster (controller and every engine set)
  cluster list [--json]               list clusters, their engine sets and engine counts
  cluster top [--profile P] [--once] [--json]   engines, tasks and progress, live (q quits)
  controller [--profile P] [--ip A] [--engines N] [--launcher KIND …] [--scheme S] [--hwm N] [--reuse] [--drop-orphans] [--db sqlite[:PATH]]
  engine [--profile P | --file engine.json]

  KIND: local | mpi [--mpiexec CMD] | ssh --hosts "a:2,b:4" [--ssh CMD] | slurm [--slurm-args "…"]
        | batch --submit CMD --cancel CMD --template FILE   (and --engine-cmd CMD for the remote side)
`;
async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "cluster":
      return (await import("./cluster/cli")).main(rest);
    case "controller":
      return (await import("./controller/main")).main(rest);
    case "start":
      return (await import("./cluster/start")).main(rest);
    case "install":
      return (await import("./kernel/install")).main(rest);
    case "kernel":
      return (await import("./kernel/main")).main(rest);
    case "engine":
      return (await import("./engine/main")).main(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return;
    default:
      throw new TsParallelError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

run(process.argv.slice(2)).catch((e: unknown) => {
  // One clear line, not a stack: the message says what is wrong and what to do.
  const err = e as { message?: string; code?: string };
  process.stderr.write(`tsparallel: ${err?.message ?? String(e)}\n`);
  process.exitCode = 1;
});
