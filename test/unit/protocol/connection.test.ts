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

test("a hostile ip or port in a connection file is named with its file and field", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsp-conn-"));
  const file = path.join(dir, "client.json");
  const ports = { clients: 1, notification: 2, engines: 3, ping: 4, heartbeat: 5 };
  const write = (ip: string, p: Record<string, unknown> = ports): void =>
    fs.writeFileSync(file, JSON.stringify({ transport: "tcp", ip, key: "k", ports: p }));
  write("127.0.0.1:9;rm -rf ~");
  assert.throws(
    () => readConnectionFile(file),
    new RegExp(
      `^ConnectionFileError: connection file ${file}: "ip" is "127.0.0.1:9;rm -rf ~", not an IP address or host name`,
    ),
  );
  write("-oProxyCommand=x");
  assert.throws(() => readConnectionFile(file), /"ip" is "-oProxyCommand=x", not an IP address/);
  write("::1");
  assert.equal(readConnectionFile(file).ip, "::1");
  write("login-node.example.org");
  assert.equal(readConnectionFile(file).ip, "login-node.example.org");
  write("127.0.0.1", { ...ports, engines: 70000 });
  assert.throws(() => readConnectionFile(file), /"ports.engines" is 70000, not a port from 1 to 65535/);
});
