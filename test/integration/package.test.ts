/** The package as a user's script sees it: `import "tsparallel"` works from a script inside the repository. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { PACKAGE_ROOT } from "../../paths";

const run = promisify(execFile);

test("a script in the repository imports tsparallel by name, as ESM and as CommonJS", async () => {
  const dir = path.join(PACKAGE_ROOT, "test-output", `package-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.writeFileSync(
      path.join(dir, "use.mjs"),
      'import { Client, Cluster, RemoteError } from "tsparallel";\nconsole.log(typeof Client.connect, typeof Cluster.start, typeof RemoteError);\n',
    );
    fs.writeFileSync(
      path.join(dir, "use.cjs"),
      'const { Client } = require("tsparallel");\nconsole.log(typeof Client.connect);\n',
    );
    assert.equal((await run(process.execPath, [path.join(dir, "use.mjs")])).stdout, "function function function\n");
    assert.equal((await run(process.execPath, [path.join(dir, "use.cjs")])).stdout, "function\n");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
