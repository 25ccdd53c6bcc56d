import assert from "node:assert/strict";
import type * as os from "node:os";
import { test } from "node:test";
import { bindAddress } from "../../../engine/direct";

const v4 = (address: string, netmask: string, internal = false): os.NetworkInterfaceInfoIPv4 => ({
  address,
  netmask,
  family: "IPv4",
  mac: "00:00:00:00:00:00",
  internal,
  cidr: null,
});

test("an engine binds its direct socket where clients reach the controller's network", () => {
  const interfaces = {
    lo: [v4("127.0.0.1", "255.0.0.0", true)],
    eth0: [v4("192.168.5.7", "255.255.255.0")],
    eth1: [v4("10.213.7.2", "255.255.255.0")],
  };
  assert.equal(bindAddress("127.0.0.1", interfaces), "127.0.0.1", "a controller on loopback: loopback");
  assert.equal(bindAddress("localhost", interfaces), "127.0.0.1");
  assert.equal(bindAddress("10.213.7.1", interfaces), "10.213.7.2", "the interface on the controller's subnet");
  assert.equal(bindAddress("172.16.0.1", interfaces), "192.168.5.7", "else the first external address");
  assert.equal(bindAddress("10.0.0.1", { lo: interfaces.lo }), undefined, "none: no direct socket");
});
