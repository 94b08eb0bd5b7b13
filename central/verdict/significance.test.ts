import { test } from "uvu";
import * as assert from "uvu/assert";
import { ATTRIBUTION_ALPHA, hypergeometricUpperTail, significantlyAbove } from "./significance.js";

const close = (a: number, b: number, rel = 1e-9) => assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-300), `${a} vs ${b}`);

test("hypergeometric tail: Fisher's tea-tasting (4 of 4 right out of 8) is 1/70, 3 or more is 17/70", () => {
  close(hypergeometricUpperTail(4, 4, 4, 8), 1 / 70);
  close(hypergeometricUpperTail(3, 4, 4, 8), 17 / 70);
  assert.is(hypergeometricUpperTail(0, 4, 4, 8), 1);
  assert.is(hypergeometricUpperTail(5, 4, 4, 8), 0);
});

test("hypergeometric tail: all of a scope's 8 failures and none of 16 peer requests is 1/C(24,8)", () => {
  close(hypergeometricUpperTail(8, 8, 8, 24), 1 / 735471);
});

test("hypergeometric tail sums to 1 across its support (large counts, no overflow)", () => {
  const [n, K, N] = [500, 20_000, 50_000];
  let s = 0;
  for (let x = 0; x <= n; x++) s += hypergeometricUpperTail(x, n, K, N) - hypergeometricUpperTail(x + 1, n, K, N);
  close(s, 1, 1e-9);
});

test("significantlyAbove: a hard fault is, a scope at its peers' ratio or below never is", () => {
  assert.ok(significantlyAbove(50, 50, 0, 550));
  assert.ok(significantlyAbove(3, 5, 0, 550), "3 of 5 against 550 clean peer requests (p = 3.5e-7)");
  assert.not.ok(significantlyAbove(20, 40, 144, 360), "50 % against peers at 40 %: chance");
  assert.not.ok(significantlyAbove(20, 40, 200, 400), "equal ratios");
  assert.not.ok(significantlyAbove(0, 0, 0, 100), "no requests");
  assert.not.ok(significantlyAbove(10, 10, 10, 10), "everyone failing is not this scope's fault");
});

test("significantlyAbove: the level is ATTRIBUTION_ALPHA (1e-5), exact at the boundary", () => {
  assert.is(ATTRIBUTION_ALPHA, 1e-5);
  // 8/8 vs 0/16: p = 1.36e-6, blamed at 1e-5, not at 1e-6.
  assert.ok(significantlyAbove(8, 8, 0, 16));
  assert.not.ok(significantlyAbove(8, 8, 0, 16, 1e-6));
});

test.run();
