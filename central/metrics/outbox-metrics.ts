/**
 * Alert delivery (issue 15 item 1), per sink and receiver (both come from the
 * central's flags, so the labels are bounded):
 *
 *   originwatch_central_alert_outbox_pending{sink,receiver}  gauge    notifications waiting in the outbox
 *   originwatch_central_alerts_delivered_total{sink,receiver} counter taken by the receiver (2xx)
 *   originwatch_central_alerts_dropped_total{sink,receiver}   counter given up (4xx, or out of attempts)
 *
 * sink is "webhook" or "alertmanager"; receiver is the URL's host:port only
 * (a webhook URL often holds a secret in its path).
 */
import client from "prom-client";

export interface OutboxView {
  sink: "webhook" | "alertmanager";
  receiver: string;
  pending(): number;
  delivered(): number;
  dropped(): number;
}

export function registerOutboxMetrics(registry: client.Registry, views: () => OutboxView[]): void {
  const labelNames = ["sink", "receiver"];
  const registers = [registry];
  const each = (fn: (v: OutboxView, l: { sink: string; receiver: string }) => void) => {
    for (const v of views()) fn(v, { sink: v.sink, receiver: v.receiver });
  };
  new client.Gauge({
    name: "originwatch_central_alert_outbox_pending",
    help: "Alert notifications waiting in the outbox (delivered at least once, retried with backoff)",
    labelNames,
    registers,
    collect() {
      each((v, l) => this.set(l, v.pending()));
    },
  });
  new client.Counter({
    name: "originwatch_central_alerts_delivered_total",
    help: "Alert notifications the receiver took (2xx)",
    labelNames,
    registers,
    collect() {
      this.reset();
      each((v, l) => this.inc(l, v.delivered()));
    },
  });
  new client.Counter({
    name: "originwatch_central_alerts_dropped_total",
    help: "Alert notifications given up (rejected with a 4xx, or out of attempts)",
    labelNames,
    registers,
    collect() {
      this.reset();
      each((v, l) => this.inc(l, v.dropped()));
    },
  });
}
