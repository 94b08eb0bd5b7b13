/**
 * A TCP fault relay on loopback: sits between a client (the sidecar) and a
 * target (an origin) and injects network faults, switchable at runtime:
 *
 *   pass        forward bytes both ways
 *   refuse      listener closed: connects get RST (ECONNREFUSED)
 *   drop-syn    connects hang (SYNs unanswered: a full accept queue held by a
 *               helper process): the client sees a connect timeout
 *   blackhole   accept, then swallow bytes both ways (existing connections too)
 *   delay       forward, each chunk delayed by `ms` in both directions
 *   reset       new connections are reset at once; with `afterBytes`, forward
 *               and reset once that many response bytes went to the client
 *   slow-close  forward, but hold the client side open `ms` after the target closed
 *
 * No traffic ever leaves loopback. Used by hop tests, the scenario suite and the demo.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net, { type AddressInfo, type Socket } from "node:net";

export type RelayMode =
  | { kind: "pass" }
  | { kind: "refuse" }
  | { kind: "drop-syn" }
  | { kind: "blackhole" }
  | { kind: "delay"; ms: number }
  | { kind: "reset"; afterBytes?: number }
  | { kind: "slow-close"; ms: number };

export interface FaultRelay {
  host: string;
  port: number;
  /** HOST:PORT */
  address: string;
  /** Connections accepted since start. */
  connections: number;
  openConnections(): number;
  mode(): RelayMode;
  /** Switch behaviour; resolves when the new mode is in force. */
  setMode(mode: RelayMode): Promise<void>;
  close(): Promise<void>;
}

export interface FaultRelayOptions {
  target: { host: string; port: number };
  /** Listen address (default 127.0.0.1:0). */
  host?: string;
  port?: number;
  mode?: RelayMode;
}

interface Pair {
  client: Socket;
  upstream?: Socket;
  toClientBytes: number;
}

export async function startFaultRelay(opts: FaultRelayOptions): Promise<FaultRelay> {
  const host = opts.host ?? "127.0.0.1";
  let mode: RelayMode = opts.mode ?? { kind: "pass" };
  const pairs = new Set<Pair>();
  let listening = false;
  let holder: ChildProcess | undefined;

  const server = net.createServer((client) => {
    relay.connections++;
    const pair: Pair = { client, toClientBytes: 0 };
    pairs.add(pair);
    client.on("error", () => {});
    client.once("close", () => {
      pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (mode.kind === "reset" && mode.afterBytes === undefined) {
      client.resetAndDestroy();
      return;
    }
    const up = net.connect(opts.target.port, opts.target.host);
    pair.upstream = up;
    up.on("error", () => client.resetAndDestroy());
    pipe(pair, client, up, false);
    pipe(pair, up, client, true);
    up.once("end", () => {
      const m = mode;
      if (m.kind === "slow-close") setTimeout(() => client.end(), m.ms).unref();
      else if (m.kind !== "blackhole") client.end();
    });
    client.once("end", () => {
      if (mode.kind !== "blackhole") up.end();
    });
    up.once("close", () => {
      if (mode.kind !== "slow-close" && mode.kind !== "blackhole") client.destroy();
    });
  });
  server.on("error", () => {});

  /** Copy src → dst honouring the mode current at each chunk. */
  function pipe(pair: Pair, src: Socket, dst: Socket, toClient: boolean): void {
    src.on("data", (chunk: Buffer) => {
      const m = mode;
      switch (m.kind) {
        case "blackhole":
          return;
        case "delay": {
          src.pause();
          setTimeout(() => {
            if (!dst.destroyed) dst.write(chunk);
            src.resume();
          }, m.ms).unref();
          return;
        }
        case "reset": {
          if (!toClient || m.afterBytes === undefined) break;
          const room = m.afterBytes - pair.toClientBytes;
          if (room <= 0) {
            pair.client.resetAndDestroy();
            pair.upstream?.destroy();
            return;
          }
          const part = chunk.subarray(0, room);
          pair.toClientBytes += part.length;
          pair.client.write(part, () => {
            if (pair.toClientBytes >= m.afterBytes!) {
              pair.client.resetAndDestroy();
              pair.upstream?.destroy();
            }
          });
          return;
        }
        default:
          break;
      }
      if (toClient) pair.toClientBytes += chunk.length;
      if (!dst.write(chunk)) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
    });
  }

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(relay.port, host, () => {
        server.off("error", reject);
        listening = true;
        if (relay.port === 0) relay.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
    });
  const destroyAll = () => {
    for (const p of pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
  };

  const relay: FaultRelay = {
    host,
    port: opts.port ?? 0,
    get address() {
      return `${host}:${relay.port}`;
    },
    connections: 0,
    openConnections: () => pairs.size,
    mode: () => mode,
    async setMode(next) {
      const prev = mode;
      mode = next;
      if (prev.kind === "drop-syn" && next.kind !== "drop-syn") {
        await stopHolder(holder);
        holder = undefined;
      }
      if (next.kind === "refuse" || next.kind === "drop-syn") {
        destroyAll();
        await unlisten();
        if (next.kind === "drop-syn" && !holder) holder = await holdPort(host, relay.port);
      } else if (!listening) {
        await listen();
      }
    },
    async close() {
      mode = { kind: "refuse" };
      destroyAll();
      await unlisten();
      await stopHolder(holder);
      holder = undefined;
    },
  };
  if (mode.kind === "refuse" || mode.kind === "drop-syn") {
    // need a port first
    await listen();
    const m = mode;
    mode = { kind: "pass" };
    await relay.setMode(m);
  } else await listen();
  return relay;
}

/**
 * Hold host:port with a listening socket that never accepts and whose accept
 * queue is already full, so further SYNs go unanswered. Node cannot listen
 * without accepting, so a tiny python3 helper holds the port.
 */
const HOLDER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(0)
fill = []
for i in range(2):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect((sys.argv[1], int(sys.argv[2])))
    except BlockingIOError:
        pass
    fill.append(c)
import time
time.sleep(0.1)
print("ready", flush=True)
sys.stdin.read()
`;

function holdPort(host: string, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", HOLDER, host, String(port)], { stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fault-relay: drop-syn helper did not start: ${err}`));
    }, 10_000);
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout!.on("data", (c: Buffer) => {
      if (c.toString().includes("ready")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`fault-relay: drop-syn needs python3 on PATH (${e.message})`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`fault-relay: drop-syn helper exited with ${code}: ${err}`));
    });
  });
}

async function stopHolder(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.stdin?.end();
  child.kill("SIGTERM");
  await exited;
}
