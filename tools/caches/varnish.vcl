# originwatch example: Varnish with the sidecar hop as its backend.
# Placeholders ({{...}}) are filled by tools/caches/render.ts; the e2e tests
# run this exact file with the real varnishd binary.
vcl 4.1;

backend sidecar {
  .host = "{{SIDECAR_HOST}}";
  .port = "{{SIDECAR_PORT}}";
  .connect_timeout = 1s;
  .first_byte_timeout = 35s;
}

sub vcl_recv {
  set req.backend_hint = sidecar;
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
