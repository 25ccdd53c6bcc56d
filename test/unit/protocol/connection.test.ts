import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionFileError, readConnectionFile } from "../../../protocol/connection";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

test("a connection file without every port is refused in one line that says what to do", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsp-conn-"));
  const file = path.join(dir, "client.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      transport: "tcp",
      ip: "127.0.0.1",
      key: "k",
      ports: { clients: 1, notification: 2, engines: 3, heartbeat: 4 },
    }),
  );
  assert.throws(
    () => readConnectionFile(file),
    (e: unknown) =>
      e instanceof ConnectionFileError &&
      /has no ping port .*restart the cluster/.test(e.message) &&
      !e.message.includes("\n"),
  );
});
