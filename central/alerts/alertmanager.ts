/**
 * Incidents as Prometheus Alertmanager alerts (issue 15 item 3): API v2,
 * `POST {url}/api/v2/alerts` with a JSON array of alerts, sent to every
 * configured Alertmanager (an HA cluster wants each client to talk to all
 * members; they deduplicate among themselves).
 *
 * One alert per incident. Its identity is its label set:
 *   alertname  OriginDown, OriginDegraded, IspFault, RegionFault, NodeFault
 *   origin     the origin
 *   kind       the IncidentKind name (ORIGIN_DOWN, ...)
 *   scope      origin, isp, region or node
 *   key        the ISP, region or node key; the origin for origin incidents
 *   severity   critical (DOWN), warning (DEGRADED, ISP, region), info (node)
 * Annotations carry the verdict's reason (description), a summary, the
 * incident id, dedupe key, flapping and peak figures; startsAt is when the
 * incident opened; generatorURL opens the dashboard on the origin.
 *
 * Lifecycle, as Alertmanager expects from any client:
 *  - opened / reopened: a firing alert goes through the outbox (durable, retried
 *    with backoff: an Alertmanager restart or outage loses nothing);
 *  - while open: every resendMs all open incidents are sent again (directly, not
 *    through the outbox: the next round repeats a failed one). A firing alert
 *    carries endsAt = send time + 4 × resendMs, so if the central dies its
 *    alerts resolve on their own after that (what Prometheus does too);
 *  - escalated (DEGRADED became DOWN: other alertname, kind and severity, so
 *    another alert): the DEGRADED alert is resolved and the DOWN one fires;
 *  - closed: the alert is resolved (endsAt = when it closed), through the outbox.
 * endsAt of a firing alert is computed when it is sent, never when it was
 * queued, so one delivered late from the outbox is not taken as resolved.
 */
import { createHash } from "node:crypto";
import { IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { IncidentRecord, Transition } from "../verdict/hysteresis.js";
import { DeliveryQueue, type DeliveryResult, postJson, validateRetry } from "./delivery-queue.js";
import type { Outbox } from "./outbox.js";

/** One alert of Alertmanager's API v2 (`postableAlert`). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL: string;
}

/** What waits in the outbox: the alert, and whether it resolves (endsAt set) or fires (endsAt added at send). */
export interface QueuedAlert {
  alert: PostableAlert;
  resolved: boolean;
}

export interface AlertmanagerOptions {
  /** Alertmanager base URLs (http or https), e.g. http://127.0.0.1:9093. */
  urls: string[];
  /** Where operators open the central's dashboard (generatorURL), e.g. https://central.example:7400. */
  externalUrl: string;
  /** Open incidents now (re-sent every resendMs). */
  openIncidents: () => IncidentRecord[];
  /** Re-send interval while an incident is open (default 60 s). */
  resendMs?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** The outbox of one Alertmanager (keyed by receiverKey(url)). */
  outbox?: (receiverKey: string) => Outbox<QueuedAlert>;
  onDelivered?: (url: string, a: QueuedAlert, attempts: number) => void;
  onDropped?: (url: string, a: QueuedAlert, reason: string) => void;
  onOutboxError?: (url: string, a: QueuedAlert, err: unknown) => void;
}

/** Checks the URLs and fills defaults; errors name the field. */
export function validateAlertmanagerOptions(o: AlertmanagerOptions) {
  if (!Array.isArray(o.urls) || o.urls.length === 0) throw new Error("alertmanager urls must list at least one URL");
  const urls = o.urls.map((raw, i) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new Error(`alertmanager urls[${i}] must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`alertmanager urls[${i}] must be http or https, got ${u.protocol}`);
    return u.toString().replace(/\/+$/, "");
  });
  const r = validateRetry("alertmanager", { resendMs: 60_000, timeoutMs: 5_000, ...o, urls });
  for (const k of ["resendMs", "timeoutMs"] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new Error(`alertmanager ${k} must be a positive number, got ${r[k]}`);
  }
  return r;
}

/** A stable short key per Alertmanager URL (its outbox prefix). */
export function receiverKey(url: string): string {
  return createHash("sha256").update(url).digest("hex").slice(0, 12);
}

const ALERTNAMES: Record<number, string> = {
  [IncidentKind.ORIGIN_DOWN]: "OriginDown",
  [IncidentKind.ORIGIN_DEGRADED]: "OriginDegraded",
  [IncidentKind.ISP_FAULT]: "IspFault",
  [IncidentKind.REGION_FAULT]: "RegionFault",
  [IncidentKind.NODE_FAULT]: "NodeFault",
};
const SEVERITY: Record<number, string> = {
  [IncidentKind.ORIGIN_DOWN]: "critical",
  [IncidentKind.ORIGIN_DEGRADED]: "warning",
  [IncidentKind.ISP_FAULT]: "warning",
  [IncidentKind.REGION_FAULT]: "warning",
  [IncidentKind.NODE_FAULT]: "info",
};
const SCOPE: Record<number, string> = {
  [IncidentKind.ORIGIN_DOWN]: "origin",
  [IncidentKind.ORIGIN_DEGRADED]: "origin",
  [IncidentKind.ISP_FAULT]: "isp",
  [IncidentKind.REGION_FAULT]: "region",
  [IncidentKind.NODE_FAULT]: "node",
};

/** The alert of an incident (kind overrides the incident's, for the alert an escalation resolves). */
export function alertOf(inc: IncidentRecord, externalUrl: string, kind: IncidentKind = inc.kind): PostableAlert {
  const scope = SCOPE[kind] ?? "origin";
  const what = scope === "origin" ? `origin ${inc.origin}` : `${scope} ${inc.scopeKey} for origin ${inc.origin}`;
  return {
    labels: {
      alertname: ALERTNAMES[kind] ?? "OriginwatchIncident",
      origin: inc.origin,
      kind: IncidentKind[kind] ?? "UNSPECIFIED",
      scope,
      key: inc.scopeKey || inc.origin,
      severity: SEVERITY[kind] ?? "warning",
    },
    annotations: {
      summary: `${IncidentKind[kind]} on ${what}${inc.flapping ? " (flapping)" : ""}`,
      description: inc.summary,
      incident_id: inc.id,
      dedupe_key: inc.dedupeKey,
      flapping: String(inc.flapping),
      reopen_count: String(inc.reopenCount),
      peak_failure_ratio: inc.peakFailureRatio.toFixed(3),
      peak_p95_ttfb_ms: String(Math.round(inc.peakP95TtfbMs)),
    },
    startsAt: new Date(inc.openedMs).toISOString(),
    generatorURL: `${externalUrl.replace(/\/+$/, "")}/#origin=${encodeURIComponent(inc.origin)}`,
  };
}

/** Alerts per POST in a re-send round. */
export const RESEND_CHUNK = 500;

interface Receiver {
  url: string;
  queue: DeliveryQueue<QueuedAlert>;
}

export class AlertmanagerSender {
  private readonly o: ReturnType<typeof validateAlertmanagerOptions>;
  readonly receivers: Receiver[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Re-sends that failed (each is repeated at the next round). */
  resendFailures = 0;
  /** The dashboard's base URL (generatorURL); the central sets it once its port is known. */
  externalUrl: string;

  constructor(options: AlertmanagerOptions) {
    this.o = validateAlertmanagerOptions(options);
    const o = this.o;
    this.externalUrl = o.externalUrl;
    this.receivers = o.urls.map((url) => ({
      url,
      queue: new DeliveryQueue<QueuedAlert>({
        deliver: (q) => this.post(url, [this.forSending(q)]),
        outbox: o.outbox?.(receiverKey(url)),
        maxAttempts: o.maxAttempts,
        initialBackoffMs: o.initialBackoffMs,
        maxBackoffMs: o.maxBackoffMs,
        onDelivered: (q, n) => o.onDelivered?.(url, q, n),
        onDropped: (q, why) => o.onDropped?.(url, q, why),
        onOutboxError: (q, err) => o.onOutboxError?.(url, q, err),
      }),
    }));
  }

  /** Reload every outbox, then deliver; starts the re-send rounds. */
  async start(): Promise<void> {
    if (this.stopped) return;
    await Promise.all(this.receivers.map((r) => r.queue.start()));
    if (this.stopped || this.timer) return;
    this.timer = setInterval(() => void this.resendOpen(), this.o.resendMs);
    this.timer.unref();
  }

  /** An incident transition from the engine. */
  notify(transition: Transition, inc: IncidentRecord): void {
    if (this.stopped) return;
    const ext = this.externalUrl;
    const out: QueuedAlert[] = [];
    if (transition === "escalated") {
      if (inc.kind === IncidentKind.ORIGIN_DOWN) out.push({ alert: { ...alertOf(inc, ext, IncidentKind.ORIGIN_DEGRADED), endsAt: new Date().toISOString() }, resolved: true });
      out.push({ alert: alertOf(inc, ext), resolved: false });
    } else if (transition === "closed") {
      out.push({ alert: { ...alertOf(inc, ext), endsAt: new Date(inc.closedMs || Date.now()).toISOString() }, resolved: true });
    } else {
      out.push({ alert: alertOf(inc, ext), resolved: false });
    }
    for (const q of out) {
      const id = `${inc.dedupeKey}/${q.alert.labels.kind}/${q.resolved ? "resolve" : "fire"}/${inc.reopenCount}`;
      for (const r of this.receivers) r.queue.enqueue(id, q);
    }
  }

  /** One re-send round: every open incident's firing alert to every Alertmanager. */
  async resendOpen(): Promise<void> {
    const open = this.o.openIncidents();
    if (open.length === 0 || this.stopped) return;
    await this.postToAll(open.map((inc) => this.forSending({ alert: alertOf(inc, this.externalUrl), resolved: false })));
  }

  /**
   * Cluster mode, when a replica takes over a partition (and has caught up):
   * the state of its incidents, sent at once rather than at the next round —
   * open ones fire, and ones closed within the last 4 re-send intervals (a
   * firing alert the previous owner sent may still be held) are resolved, so
   * a close the previous owner decided but did not get to send is not lost.
   * Sent directly (a failure is counted; open ones are re-sent every round).
   */
  async sendState(incidents: IncidentRecord[], nowMs = Date.now()): Promise<void> {
    if (this.stopped) return;
    const alerts: PostableAlert[] = [];
    for (const inc of incidents) {
      if (inc.open) alerts.push(this.forSending({ alert: alertOf(inc, this.externalUrl), resolved: false }));
      else if (inc.closedMs > nowMs - 4 * this.o.resendMs) alerts.push({ ...alertOf(inc, this.externalUrl), endsAt: new Date(inc.closedMs).toISOString() });
    }
    if (alerts.length > 0) await this.postToAll(alerts);
  }

  /** Alerts to every Alertmanager, at most RESEND_CHUNK per POST (a large fleet's round stays within body limits). */
  private async postToAll(alerts: PostableAlert[]): Promise<void> {
    await Promise.all(
      this.receivers.map(async (r) => {
        for (let i = 0; i < alerts.length; i += RESEND_CHUNK) {
          if ((await this.post(r.url, alerts.slice(i, i + RESEND_CHUNK))) !== "ok") this.resendFailures++;
        }
      }),
    );
  }

  /** Notifications waiting in the outboxes, per Alertmanager URL. */
  pending(): Array<{ url: string; pending: number; delivered: number; dropped: number }> {
    return this.receivers.map((r) => ({ url: r.url, pending: r.queue.pending(), delivered: r.queue.delivered, dropped: r.queue.dropped }));
  }

  async flushWrites(): Promise<void> {
    await Promise.all(this.receivers.map((r) => r.queue.flushWrites()));
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(this.receivers.map((r) => r.queue.shutdown()));
  }

  /** A firing alert's endsAt is set at send time: now + 4 re-send intervals. */
  private forSending(q: QueuedAlert): PostableAlert {
    if (q.resolved) return q.alert;
    return { ...q.alert, endsAt: new Date(Date.now() + 4 * this.o.resendMs).toISOString() };
  }

  private post(url: string, alerts: PostableAlert[]): Promise<DeliveryResult> {
    return postJson(`${url}/api/v2/alerts`, alerts, {}, this.o.timeoutMs);
  }
}
