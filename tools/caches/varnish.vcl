# originwatch example: Varnish with the sidecar hop as its backend.
# Placeholders ({{...}}) are filled by tools/caches/render.ts; the e2e tests
# run this exact file with the real varnishd binary.
#
# X-Forwarded-For: before vcl_recv Varnish itself APPENDS client.ip to any
# X-Forwarded-For the client sent ("6.6.6.6, <client>"), and the sidecar
# trusts this cache (loopback) and appends again — a forged first hop would
# reach the origin. vcl_recv below replaces it with the client address alone.
#
# WebSocket upgrades are piped (Varnish cannot cache a tunnel); the sidecar
# records them as `upgrade` when the origin has `upgrade: true`, else refuses.
vcl 4.1;

backend sidecar {
  .host = "{{SIDECAR_HOST}}";
  .port = "{{SIDECAR_PORT}}";
  .connect_timeout = 1s;
  .first_byte_timeout = 35s;
}

sub vcl_recv {
  set req.backend_hint = sidecar;
  if (req.restarts == 0) {
    unset req.http.X-Forwarded-For;
    set req.http.X-Forwarded-For = client.ip;
  }
  if (req.http.Upgrade ~ "(?i)websocket") {
    return (pipe);
  }
}

sub vcl_pipe {
  if (req.http.Upgrade) {
    set bereq.http.Upgrade = req.http.Upgrade;
    set bereq.http.Connection = req.http.Connection;
  }
}

sub vcl_backend_response {
  if (beresp.status == 200 && beresp.ttl <= 0s) {
    set beresp.ttl = 10m;
  }
}

sub vcl_deliver {
  if (obj.hits > 0) {
    set resp.http.X-Cache = "HIT";
  } else {
    set resp.http.X-Cache = "MISS";
  }
}
