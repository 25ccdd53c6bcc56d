import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import {
  BULK_MIN_BYTES,
  SharedWindow,
  WindowReader,
  bulkDir,
  framesFromWindow,
  framesToWindow,
  isBulkRefs,
  readBulk,
  stashBulk,
  sweepStale,
  untrustedBecause,
} from "../../../protocol/bulk";

test("large buffers round-trip through shared memory; small ones stay in the message", () => {
  const large = Buffer.alloc(BULK_MIN_BYTES, 7);
  const small = Buffer.from("small");
  const { buffers, refs, files } = stashBulk([small, large]);
  assert.deepEqual(buffers, [small, Buffer.alloc(0)]);
  assert.equal(refs.length, 1);
  assert.equal(refs[0]!.index, 1);
  assert.ok(isBulkRefs(refs));
  const back = readBulk(buffers, refs, true);
  assert.ok(back[1]!.equals(large));
  assert.equal(fs.existsSync(files[0]!), false, "the reader removed the file");
  assert.throws(() => readBulk(buffers, refs), /shared memory .* is gone; send the data again/);
});

test("refs naming paths outside the directory, or of the wrong shape, are refused", () => {
  assert.equal(isBulkRefs([{ index: 0, name: "../../etc/passwd", bytes: 1 }]), false);
  assert.equal(isBulkRefs([{ index: 0, name: "12-a/b", bytes: 1 }]), false);
  assert.equal(isBulkRefs([{ index: -1, name: "12-a", bytes: 1 }]), false);
  assert.equal(isBulkRefs({ index: 0, name: "12-a", bytes: 1 }), false);
  assert.equal(isBulkRefs([{ index: 0, name: "12-a.3", bytes: 10 }]), true);
});

test("a file of the wrong size is named, and files of processes that are gone are swept", () => {
  const { buffers, refs, files } = stashBulk([Buffer.alloc(BULK_MIN_BYTES)], 999_999_999);
  assert.throws(() => readBulk(buffers, [{ ...refs[0]!, bytes: 5 }]), /has 1048576 bytes, not 5/);
  const marker = path.join(bulkDir(), "engine-gone");
  fs.writeFileSync(marker, "999999998");
  sweepStale((pid) => pid !== 999_999_999 && pid !== 999_999_998);
  assert.equal(fs.existsSync(files[0]!), false);
  assert.equal(fs.existsSync(marker), false);
});

test("the same buffer for several engines is written once and hard-linked, and each name is removed on its own", () => {
  const written = new WeakMap<Buffer, string>();
  const payload = Buffer.alloc(BULK_MIN_BYTES, 3);
  const first = stashBulk([payload], process.pid, written);
  const second = stashBulk([payload], process.pid, written);
  assert.notEqual(first.files[0], second.files[0]);
  assert.equal(fs.statSync(first.files[0]!).ino, fs.statSync(second.files[0]!).ino, "one file, two names");
  assert.ok(readBulk(first.buffers, first.refs, true)[0]!.equals(payload));
  assert.ok(readBulk(second.buffers, second.refs, true)[0]!.equals(payload), "the other name still reads");
  // Once every name is gone, the next request writes the buffer again.
  const third = stashBulk([payload], process.pid, written);
  assert.ok(readBulk(third.buffers, third.refs, true)[0]!.equals(payload));
});

test("a folder is trusted only as a real directory of ours that nobody else may enter", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "tsp-trust-"));
  const dir = path.join(root, "d");
  fs.mkdirSync(dir, { mode: 0o700 });
  assert.equal(untrustedBecause(dir, fs.lstatSync(dir)), undefined);
  fs.chmodSync(dir, 0o777);
  assert.match(untrustedBecause(dir, fs.lstatSync(dir)) ?? "", /has mode 777, open to other users/);
  const link = path.join(root, "l");
  fs.symlinkSync(dir, link);
  assert.match(untrustedBecause(link, fs.lstatSync(link)) ?? "", /is a symbolic link/);
  const file = path.join(root, "f");
  fs.writeFileSync(file, "");
  assert.match(untrustedBecause(file, fs.lstatSync(file)) ?? "", /is not a directory/);
  const theirs = { ...fs.lstatSync(dir), isSymbolicLink: () => false, isDirectory: () => true, uid: 65534 };
  assert.match(untrustedBecause(dir, theirs) ?? "", /belongs to uid 65534, not to this user/);
  fs.rmSync(root, { recursive: true });
});

test("a reply planted as a symbolic link is not read through it", () => {
  const target = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tsp-planted-")), "secret");
  fs.writeFileSync(target, Buffer.alloc(BULK_MIN_BYTES, 1));
  const name = `${process.pid}-1.planted`;
  fs.symlinkSync(target, path.join(bulkDir(), name));
  assert.throws(() => readBulk([Buffer.alloc(0)], [{ index: 0, name, bytes: BULK_MIN_BYTES }]), /is gone/);
  fs.rmSync(path.join(bulkDir(), name));
});

test("a window is written at offsets and read at offsets by name, private to this user, and removed on close", () => {
  const w = new SharedWindow();
  const file = path.join(bulkDir(), w.name);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.match(w.name, new RegExp(`^${process.pid}-${process.pid}\\.w`), "named so sweepStale knows whose it is");
  w.write(8, new Float64Array([1.5, 2.5]));
  w.write(0, new Float64Array([0.5]));
  const reader = new WindowReader();
  const into = new Float64Array(3);
  reader.read(w.name, 0, into);
  assert.deepEqual([...into], [0.5, 1.5, 2.5]);
  w.write(8, new Float64Array([9])); // rewritten in place: the open reader sees it
  reader.read(w.name, 8, into.subarray(0, 1));
  assert.equal(into[0], 9);
  assert.throws(() => reader.read(w.name, 16, new Float64Array(2)), /window \S+ ends before byte 32/);
  assert.throws(() => reader.read("../../etc/passwd", 0, into), /not a window of this user/);
  assert.throws(() => reader.read(`${process.pid}-1.wnope`, 0, into), /cannot open shared-memory window/);
  w.close();
  assert.equal(fs.existsSync(file), false);
  assert.throws(() => w.write(0, into), /is closed/);
  reader.close();
});

test("a message's large frames go to a window and come back, into memory of their own or the caller's", () => {
  const w = new SharedWindow();
  const reader = new WindowReader();
  try {
    const small = [Buffer.from("head"), Buffer.from("tiny")];
    assert.equal(framesToWindow(small, w, 1024), undefined, "nothing large: the socket path");
    const big = Buffer.alloc(5000, 3);
    const sent = framesToWindow([Buffer.from("head"), Buffer.from("x"), big], w, 1024)!;
    assert.equal(sent.length, 4);
    assert.equal(sent[3]!.length, 0, "the large frame is emptied");
    const read = (name: string, offset: number, into: Buffer): void => reader.read(name, offset, into);
    const back = framesFromWindow(sent, read);
    assert.deepEqual(
      back.map((b) => b.toString("latin1")),
      ["head", "x", big.toString("latin1")],
    );
    const mine = Buffer.alloc(5000);
    const landed = framesFromWindow(sent, read, (index, bytes) => (index === 2 && bytes === 5000 ? mine : undefined));
    assert.equal(landed[2], mine);
    assert.ok(mine.equals(big));
    assert.throws(() => framesFromWindow([Buffer.from("{}")], read), /does not say where its buffers are/);
  } finally {
    w.close();
    reader.close();
  }
});

test("a reader keeps only the most recently read windows open (an open one pins a removed window's memory)", () => {
  const windows = [new SharedWindow(), new SharedWindow(), new SharedWindow()];
  const reader = new WindowReader(2);
  const openOnes = (): string[] =>
    fs
      .readdirSync("/proc/self/fd")
      .map((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return "";
        }
      })
      .filter((l) => windows.some((w) => l.startsWith(path.join(bulkDir(), w.name))))
      .map((l) => path.basename(l).replace(" (deleted)", ""))
      .sort();
  try {
    for (const w of windows) w.write(0, new Uint8Array([1]));
    const one = new Uint8Array(1);
    reader.read(windows[0]!.name, 0, one);
    reader.read(windows[1]!.name, 0, one);
    reader.read(windows[0]!.name, 0, one); // read again: now the most recent
    reader.read(windows[2]!.name, 0, one);
    // Each writer holds its own open; the reader only the two it read last.
    const names = windows.map((w) => w.name);
    assert.deepEqual(openOnes(), [...names, names[0]!, names[2]!].sort());
  } finally {
    reader.close();
    for (const w of windows) w.close();
  }
  assert.deepEqual(openOnes(), []);
});
