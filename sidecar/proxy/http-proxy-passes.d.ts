/**
 * The one http-proxy internal the hop uses: its web-incoming passes, so
 * origin-proxy.ts can pick the `stream` pass by identity (a function's name
 * does not survive minification).
 */
declare module "http-proxy/lib/http-proxy/passes/web-incoming.js" {
  const passes: { stream: (...args: unknown[]) => unknown; [name: string]: (...args: unknown[]) => unknown };
  export default passes;
}
