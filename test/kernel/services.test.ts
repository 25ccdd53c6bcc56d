/**
 * The kernel through @jupyterlab/services (what JupyterLab itself uses) talking to Debian's
 * Jupyter server over HTTP and websockets: a local cell, a streamed `%%px`, a failing `%px`, an
 * interrupt during `%px`, all read from the iopub messages that reach the client.
 */
import * as util from "node:util";
import { strict as assert } from "node:assert";
import { after, before, test } from "node:test";
import type { KernelMessage } from "@jupyterlab/services";
import { type JupyterServer, startJupyterServer } from "../helpers/jupyter-server";
import { type TestCluster, startCluster } from "../helpers/cluster";

let server: JupyterServer;
let cluster: TestCluster;

before(async () => {
  cluster = await startCluster(2, { profile: "default" });
  server = await startJupyterServer();
});
after(async () => {
  await server?.stop();
  await cluster?.stop();
});

interface Ran {
  reply: KernelMessage.IExecuteReplyMsg["content"];
  iopub: KernelMessage.IIOPubMessage[];
}

type KernelConnection = Awaited<ReturnType<JupyterServer["startKernel"]>>;

/** Executes `code` and collects every iopub message of the request until its reply. */
async function run(
  kernel: KernelConnection,
  code: string,
  onIOPub?: (m: KernelMessage.IIOPubMessage) => void,
): Promise<Ran> {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = kernel.requestExecute({ code, stop_on_error: true });
  future.onIOPub = (m) => {
    iopub.push(m);
    onIOPub?.(m);
  };
  const reply = await future.done;
  return { reply: reply.content, iopub };
}

function text(r: Ran): string {
  return r.iopub
    .map((m) => {
      const c = m.content as { text?: string; data?: Record<string, unknown>; traceback?: string[] };
      const trace = c.traceback ? util.stripVTControlCharacters(c.traceback.join("\n")) : undefined;
      return c.text ?? (c.data?.["text/plain"] as string | undefined) ?? trace ?? "";
    })
    .join("\n");
}

test("@jupyterlab/services against jupyter-server: kernelspec, local cells, streamed %%px, errors, interrupt", async () => {
  const specs = await server.kernelspecs();
  assert.equal(specs.kernelspecs.tsparallel?.display_name, "TypeScript (tsparallel)");

  const kernel = await server.startKernel("tsparallel");
  const info = await kernel.requestKernelInfo();
  assert.equal((info?.content as { language_info: { name: string } }).language_info.name, "typescript");

  const local = await run(kernel, "const n: number = 6 * 7;\nn");
  assert.equal(local.reply.status, "ok");
  const result = local.iopub.find((m) => m.header.msg_type === "execute_result");
  assert.equal((result?.content as { data: Record<string, string> }).data["text/plain"], "42");
  assert.ok(
    local.iopub.some((m) => m.header.msg_type === "execute_input"),
    "execute_input recorded",
  );

  const px = await run(kernel, '%%px\nconst who: string = "engine";\nconsole.log(`${who} ${process.pid}`);');
  assert.equal(px.reply.status, "ok");
  assert.match(text(px), /\[stdout:0\] engine \d+/);
  assert.match(text(px), /\[stdout:1\] engine \d+/);

  const failing = await run(kernel, '%%px --targets 1\nthrow new TypeError("no such thing")');
  assert.equal(failing.reply.status, "error");
  assert.match(text(failing), /\[1:execute\]: TypeError: no such thing/);

  // Interrupt while the engines spin: the kernel says so on stderr and survives.
  let interrupted = false;
  const spinning = await run(kernel, '%px console.log("spinning"); while (true) {}', (m) => {
    if (!interrupted && JSON.stringify(m.content).includes("spinning")) {
      interrupted = true;
      void kernel.interrupt();
    }
  });
  assert.equal(spinning.reply.status, "error");
  assert.match(text(spinning), /Received Keyboard Interrupt\. Sending signal SIGINT to engines/);
  assert.match(text(spinning), /KeyboardInterrupt/);
  const afterwards = await run(kernel, "%px 1 + 1");
  assert.equal(afterwards.reply.status, "ok");
  assert.match(text(afterwards), /Out\[0:\d+\]: 2/);
  await kernel.shutdown();
});
