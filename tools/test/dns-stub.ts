/**
 * A minimal authoritative DNS server on loopback UDP for tests: answers A
 * queries for the names it knows (one address or several: several A records),
 * NXDOMAIN for the rest (or SERVFAIL / silence when told). Lets DNS-failure cases run without any non-loopback traffic.
 */
import dgram from "node:dgram";
import type { AddressInfo } from "node:net";

export interface DnsStub {
  address: string;
  port: number;
  /** name → IPv4 (or several) */
  records: Map<string, string | string[]>;
  mode: "answer" | "servfail" | "drop";
  queries: number;
  close(): Promise<void>;
}

export async function startDnsStub(records: Record<string, string | string[]> = {}): Promise<DnsStub> {
  const sock = dgram.createSocket("udp4");
  const stub: DnsStub = {
    address: "",
    port: 0,
    records: new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v])),
    mode: "answer",
    queries: 0,
    close: () => new Promise((r) => sock.close(() => r())),
  };
  sock.on("message", (msg, rinfo) => {
    stub.queries++;
    if (stub.mode === "drop" || msg.length < 12) return;
    // question name
    let i = 12;
    const labels: string[] = [];
    while (i < msg.length && msg[i] !== 0) {
      const len = msg[i];
      labels.push(msg.subarray(i + 1, i + 1 + len).toString("latin1"));
      i += 1 + len;
    }
    const qEnd = i + 5; // zero byte + qtype + qclass
    if (qEnd > msg.length) return;
    const qtype = msg.readUInt16BE(i + 1);
    const name = labels.join(".").toLowerCase();
    const ip = stub.records.get(name);
    const rcode = stub.mode === "servfail" ? 2 : ip === undefined ? 3 : 0;
    const ips = ip === undefined ? [] : typeof ip === "string" ? [ip] : ip;
    const answer = rcode === 0 && qtype === 1 && ips.length > 0;
    const head = Buffer.alloc(12);
    msg.copy(head, 0, 0, 2);
    head.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answer ? ips.length : 0, 6);
    const parts = [head, msg.subarray(12, qEnd)];
    for (const one of answer ? ips : []) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(5, 6);
      rr.writeUInt16BE(4, 10);
      one.split(".").forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
      parts.push(rr);
    }
    sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  stub.port = (sock.address() as AddressInfo).port;
  stub.address = `127.0.0.1:${stub.port}`;
  return stub;
}
