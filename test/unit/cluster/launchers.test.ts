import assert from "node:assert/strict";
import { test } from "node:test";
import { exitReason } from "../../../cluster/launchers/local";
import { parseHosts } from "../../../cluster/launchers/ssh";
import { renderTemplate, slurmTemplate, withExports } from "../../../cluster/launchers/batch";
import { shellQuote, splitCommand } from "../../../cluster/launchers/launcher";
import { checkSpec, specFromFlags, specToFlags } from "../../../cluster/launchers/spec";

test("an engine's end is told in words: exit code, signal, or out of memory", () => {
  assert.equal(exitReason(3, null, ""), "exited with code 3");
  assert.equal(exitReason(null, "SIGKILL", "[engine 0] something\n"), "killed by SIGKILL");
  const oom =
    "\n<--- Last few GCs --->\n\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb8 node::Abort()\n";
  assert.equal(
    exitReason(null, "SIGABRT", oom),
    "it ran out of memory (FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory)",
  );
  assert.equal(exitReason(null, "SIGABRT", "Assertion failed: x\n"), "killed by SIGABRT (Assertion failed: x)");
});

test("--hosts: counts per host, n shared among hosts without one, disagreements refused in one line", () => {
  assert.deepEqual(parseHosts("a:2,b:4", undefined), [
    { host: "a", count: 2 },
    { host: "b", count: 4 },
  ]);
  assert.deepEqual(parseHosts("a:2,b:4", 6), [
    { host: "a", count: 2 },
    { host: "b", count: 4 },
  ]);
  assert.deepEqual(parseHosts("a, b ,c", 7), [
    { host: "a", count: 3 },
    { host: "b", count: 2 },
    { host: "c", count: 2 },
  ]);
  assert.deepEqual(parseHosts("user@a:1,b", 3), [
    { host: "user@a", count: 1 },
    { host: "b", count: 2 },
  ]);
  assert.throws(() => parseHosts("a:2,b:4", 3), /-n 3 disagrees with --hosts "a:2,b:4", which starts 6 engines/);
  assert.throws(() => parseHosts("a:2,b", 2), /-n 2 is too few/);
  assert.throws(() => parseHosts("a:0", undefined), /bad host "a:0"/);
  assert.throws(() => parseHosts("a:x", undefined), /bad host "a:x" in --hosts: use HOST or HOST:COUNT/);
  assert.throws(() => parseHosts(" , ", undefined), /--hosts is empty/);
});

test("job-script templates: placeholders filled, the shell's ${VAR} kept, the connection info exported after the directives", () => {
  const script = renderTemplate(
    "#!/bin/sh\n#PBS -l nodes={n}\n#PBS -o {profile_dir}/out\necho ${HOME} {set} {unknown}\nmpiexec -n {n} {engine_cmd}\n",
    { n: 4, engine_cmd: "node cli.js engine", profile: "p", profile_dir: "/d", set: "batch-0" },
  );
  assert.equal(
    script,
    "#!/bin/sh\n#PBS -l nodes=4\n#PBS -o /d/out\necho ${HOME} batch-0 {unknown}\nmpiexec -n 4 node cli.js engine\n",
  );
  const exported = withExports(script, { TSPARALLEL_CONNECTION_INFO: '{"key":"it\'s"}' });
  assert.equal(
    exported.split("\n").slice(0, 5).join("\n"),
    `#!/bin/sh\n#PBS -l nodes=4\n#PBS -o /d/out\nexport TSPARALLEL_CONNECTION_INFO='{"key":"it'\\''s"}'\necho \${HOME} batch-0 {unknown}`,
  );
  assert.match(
    slurmTemplate(["--partition=debug", "--time=1:00:00"], "/log/x.out"),
    /#SBATCH --ntasks=\{n\}\n#SBATCH --output=\/log\/x.out\n#SBATCH --partition=debug\n#SBATCH --time=1:00:00\nsrun \{engine_cmd\}/,
  );
});

test("shell quoting and command splitting round-trip words with spaces and quotes", () => {
  assert.equal(shellQuote("plain/path-1.2"), "plain/path-1.2");
  assert.equal(shellQuote("two words"), "'two words'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.deepEqual(splitCommand(`ssh -F "my config" -o 'A=b c'`), ["ssh", "-F", "my config", "-o", "A=b c"]);
  assert.deepEqual(splitCommand(`--x="a b" --comment='it''s' $HOME`), ["--x=a b", "--comment=its", "$HOME"]);
});

test("launcher inputs that a shell or ssh would read as code are refused in one line", () => {
  assert.throws(() => parseHosts("-oProxyCommand=x", undefined), /a host name cannot begin with "-"/);
  assert.throws(
    () => specFromFlags("slurm", { "slurm-args": "--partition=debug\nrm -rf ~" }),
    /--slurm-args holds a control character \("\\n"\)/,
  );
  assert.throws(
    () => specFromFlags("slurm", { "slurm-args": "-p debug; rm -rf ~" }),
    /--slurm-args holds the shell syntax ";"/,
  );
  assert.throws(() => slurmTemplate(["--x\nrm -rf ~"], "/o"), /holds a control character/);
  assert.match(slurmTemplate(["--comment=a b"], "/o"), /\n#SBATCH '--comment=a b'\n/);
  const script = renderTemplate("cd {profile_dir} && echo {profile}", {
    n: 1,
    engine_cmd: "e",
    profile: "p$(id)",
    profile_dir: "/home/a b/x",
    set: "s",
  });
  assert.equal(script, "cd '/home/a b/x' && echo 'p$(id)'");
});

test("engine set specs: flags parsed, options of another launcher refused, missing ones named, counts bounded", () => {
  assert.deepEqual(specFromFlags("slurm", { "slurm-args": "--partition=debug --time=10" }), {
    engines: "slurm",
    slurmArgs: ["--partition=debug", "--time=10"],
  });
  assert.deepEqual(specToFlags({ engines: "ssh", hosts: "a:2", ssh: "ssh -F c" }), [
    "--hosts",
    "a:2",
    "--ssh",
    "ssh -F c",
  ]);
  assert.throws(() => specFromFlags("pbs", {}), /unknown --engines "pbs": use local, mpi, ssh, slurm, batch/);
  assert.throws(
    () => checkSpec({ engines: "local", hosts: "a" }, 2),
    /--hosts is an option of --engines ssh, not of --engines local/,
  );
  assert.throws(() => checkSpec({ engines: "ssh" }, 2), /--engines ssh needs --hosts/);
  assert.throws(() => checkSpec({ engines: "batch", submit: "qsub" }, 2), /--engines batch needs --cancel, --template/);
  assert.throws(
    () => checkSpec({ engines: "batch", submit: "sh", cancel: "sh", template: "/no/such/template" }, 2),
    /cannot read the job-script template \/no\/such\/template/,
  );
  assert.throws(() => checkSpec({ engines: "local" }, 0), /from 1 to 4096; got 0/);
  assert.throws(() => checkSpec({ engines: "local" }, 1e6), /from 1 to 4096/);
  assert.throws(
    () => checkSpec({ engines: "ssh", hosts: "a", ssh: "no-such-ssh" }, 1),
    /no-such-ssh not found: install it \(on Debian: sudo apt-get install openssh-client\) or pass --ssh CMD/,
  );
  assert.throws(
    () => checkSpec({ engines: "slurm", env: { PATH: "/nowhere" } }, 1),
    /sbatch not found: install it \(on Debian: sudo apt-get install slurm-client\)$/,
  );
});
