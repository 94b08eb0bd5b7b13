/**
 * A TCP fault relay on loopback: sits between a client (the sidecar) and a
 * target (an origin) and injects network faults, switchable at runtime:
 *
 *   pass        forward bytes both ways
 *   refuse      listener closed: connects get RST (ECONNREFUSED)
 *   drop-syn    connects hang (SYNs unanswered: a full accept queue held by a
 *               helper process): the client sees a connect timeout
 *   blackhole   accept, then hold every byte both ways (existing connections too):
 *               nothing arrives, as on a path that drops packets; like TCP
 *               retransmission, held bytes are delivered when the path clears
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
  /** Delayed writes per direction, in order; a FIN waits behind them. */
  toUp: Promise<void>;
  toClient: Promise<void>;
  /** a reset is on its way to the client: nothing else may close it first */
  resetting: boolean;
}

const sleepUntil = (t: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t - Date.now())).unref());

export async function startFaultRelay(opts: FaultRelayOptions): Promise<FaultRelay> {
  const host = opts.host ?? "127.0.0.1";
  let mode: RelayMode = opts.mode ?? { kind: "pass" };
  const pairs = new Set<Pair>();
  /** Bytes held while blackholed, in arrival order. */
  let held: Array<() => void> = [];
  const release = () => {
    const h = held;
    held = [];
    for (const f of h) f();
  };
  let listening = false;
  let holder: ChildProcess | undefined;

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    relay.connections++;
    const pair: Pair = { client, toClientBytes: 0, toUp: Promise.resolve(), toClient: Promise.resolve(), resetting: false };
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
    const up = net.connect({ port: opts.target.port, host: opts.target.host, allowHalfOpen: true });
    pair.upstream = up;
    up.on("error", () => client.resetAndDestroy());
    pipe(pair, client, up, false);
    pipe(pair, up, client, true);
    up.once("end", () => {
      const m = mode;
      if (m.kind === "slow-close") pair.toClient = pair.toClient.then(() => sleepUntil(Date.now() + m.ms)).then(() => void (pair.resetting || client.end()));
      else if (m.kind === "blackhole") held.push(() => void (pair.toClient = pair.toClient.then(() => void (pair.resetting || client.end()))));
      else pair.toClient = pair.toClient.then(() => void (pair.resetting || client.end()));
    });
    client.once("end", () => {
      if (mode.kind === "blackhole") held.push(() => void (pair.toUp = pair.toUp.then(() => void up.end())));
      else pair.toUp = pair.toUp.then(() => void up.end());
    });
    // the target went away: finish what is queued for the client, then close it
    up.once("close", () => {
      if (pair.resetting || mode.kind === "slow-close" || mode.kind === "blackhole") return;
      pair.toClient = pair.toClient.then(() => void (pair.resetting || client.end()));
    });
  });
  server.on("error", () => {});

  /** Copy src → dst honouring the mode current at each chunk. */
  function pipe(pair: Pair, src: Socket, dst: Socket, toClient: boolean): void {
    src.on("data", (chunk: Buffer) => {
      const m = mode;
      switch (m.kind) {
        case "blackhole": {
          // hold, and stop reading: backpressure reaches the sender as on a dead path
          src.pause();
          held.push(() => {
            if (toClient) pair.toClientBytes += chunk.length;
            if (!dst.destroyed) dst.write(chunk);
            if (!src.destroyed) src.resume();
          });
          return;
        }
        case "delay": {
          const due = Date.now() + m.ms;
          const write = () => {
            if (toClient) pair.toClientBytes += chunk.length;
            if (!dst.destroyed) dst.write(chunk);
          };
          if (toClient) pair.toClient = pair.toClient.then(() => sleepUntil(due)).then(write);
          else pair.toUp = pair.toUp.then(() => sleepUntil(due)).then(write);
          return;
        }
        case "reset": {
          if (!toClient || m.afterBytes === undefined) break;
          const room = m.afterBytes - pair.toClientBytes;
          pair.resetting = true;
          if (room <= 0) {
            pair.client.resetAndDestroy();
            pair.upstream?.destroy();
            return;
          }
          const part = chunk.subarray(0, room);
          pair.toClientBytes += part.length;
          pair.client.write(part, () => {
            if (pair.toClientBytes < m.afterBytes!) return;
            // resetAndDestroy() straight from a write callback closes with a FIN (Node 20); a moment later it is an RST
            setTimeout(() => {
              pair.client.resetAndDestroy();
              pair.upstream?.destroy();
            }, 10).unref();
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
      if (prev.kind === "blackhole" && next.kind !== "blackhole") release();
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
