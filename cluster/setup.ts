/**
 * What `npm start` and `npm test` need from the system, and setting it up: Jupyter comes from
 * Debian (PyPI may be out of reach), so a missing piece is installed with apt-get when we run as
 * root, said in one line otherwise (`sudo apt-get install …`, or the pip line for a Jupyter that
 * pip installed).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { TsParallelError } from "../protocol/errors";

export interface Requirement {
  what: string;
  /** The Debian package that provides it. */
  debian: string;
  /** The pip package, for what a pip-installed Jupyter would lack. */
  pip?: string;
  present(python: string): boolean;
}

function pythonHas(python: string, module: string): boolean {
  return spawnSync(python, ["-c", `import ${module}`], { stdio: "ignore" }).status === 0;
}

const onPath = (cmd: string): boolean =>
  (process.env.PATH ?? "").split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));

const pythonModule = (what: string, module: string, debian: string, pip?: string): Requirement => ({
  what,
  debian,
  ...(pip ? { pip } : {}),
  present: (python) => pythonHas(python, module),
});

/** JupyterLab's server side: what `tsparallel start` runs. */
export const LAB_REQUIREMENTS: Requirement[] = [
  pythonModule("Jupyter Server", "jupyter_server", "jupyter-server", "jupyter-server"),
  pythonModule("jupyterlab_server", "jupyterlab_server", "python3-jupyterlab-server", "jupyterlab-server"),
  pythonModule("jupyter_client", "jupyter_client", "jupyter-client", "jupyter-client"),
];

/** Everything the tests drive: Jupyter, a browser, and the schedulers the launchers use. */
export const TEST_REQUIREMENTS: Requirement[] = [
  ...LAB_REQUIREMENTS,
  pythonModule("nbclient", "nbclient", "python3-nbclient", "nbclient"),
  pythonModule("nbconvert", "nbconvert", "jupyter-nbconvert", "nbconvert"),
  pythonModule("ipyparallel", "ipyparallel", "python3-ipyparallel", "ipyparallel"),
  { what: "chromium", debian: "chromium", present: () => fs.existsSync("/usr/bin/chromium") },
  { what: "mpiexec", debian: "openmpi-bin", present: () => onPath("mpiexec") },
  { what: "sshd", debian: "openssh-server", present: () => fs.existsSync("/usr/sbin/sshd") },
  { what: "ssh", debian: "openssh-client", present: () => onPath("ssh") },
  { what: "Slurm", debian: "slurm-wlm", present: () => fs.existsSync("/usr/sbin/slurmctld") && onPath("sbatch") },
  { what: "munge", debian: "munge", present: () => fs.existsSync("/usr/sbin/munged") },
];

/**
 * The Python that runs Jupyter: TSPARALLEL_PYTHON, else the one behind `jupyter` on PATH when it
 * has Jupyter Server (a pip or venv install), else Debian's /usr/bin/python3.
 */
export function jupyterPython(): string {
  if (process.env.TSPARALLEL_PYTHON) return process.env.TSPARALLEL_PYTHON;
  const jupyter = (process.env.PATH ?? "")
    .split(path.delimiter)
    .map((d) => path.join(d, "jupyter"))
    .find((p) => fs.existsSync(p));
  if (jupyter && !jupyter.startsWith("/usr/bin/")) {
    const shebang = /^#!\s*(\S+)/.exec(fs.readFileSync(jupyter, "utf8").split("\n", 1)[0] ?? "")?.[1];
    if (shebang && pythonHas(shebang, "jupyter_server")) return shebang;
  }
  return "/usr/bin/python3";
}

/** apt-get install, when we are root and have apt-get; null otherwise. */
function aptInstaller(): ((debs: string[]) => void) | null {
  if (process.getuid?.() !== 0 || !onPath("apt-get")) return null;
  return (debs) => {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...debs], { stdio: "inherit", env });
  };
}

/**
 * Installs what `requirements` lack (Debian's Python only: as root, with apt-get), saying which; or
 * throws the one line that says what to run. `install` is apt-get unless told (tests; null: none).
 */
export function ensure(
  requirements: Requirement[],
  purpose: string,
  python = jupyterPython(),
  install: ((debs: string[]) => void) | null = aptInstaller(),
): void {
  const missing = (): Requirement[] => requirements.filter((r) => !r.present(python));
  let lacking = missing();
  if (lacking.length === 0) return;
  const viaPip = !python.startsWith("/usr/bin/");
  if (install && !viaPip) {
    const debs = [...new Set(lacking.map((r) => r.debian))];
    console.log(
      `tsparallel: ${purpose} needs ${lacking.map((r) => r.what).join(", ")}: installing ${debs.join(" ")} with apt-get`,
    );
    install(debs);
    lacking = missing();
    if (lacking.length === 0) return;
  }
  const pips = lacking.map((r) => r.pip).filter((p): p is string => p !== undefined);
  throw new TsParallelError(
    `${purpose} needs ${lacking.map((r) => r.what).join(", ")}: run \`sudo apt-get install ${[...new Set(lacking.map((r) => r.debian))].join(" ")}\`` +
      (viaPip && pips.length > 0
        ? ` (or, for the Jupyter pip installed in ${python}: \`${python} -m pip install ${pips.join(" ")}\`)`
        : ""),
  );
}
