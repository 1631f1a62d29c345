/**
 * Finds the backend targets the accuracy benchmark can run: every built-in
 * (or the one `--backend` names, a module path included) on every target
 * whose probe says it is available here, filtered by `--target`.
 *
 * @module
 */

import type { AttentionBackend, Target } from "../../core/backend.ts";
import { builtinRegistry } from "../../backends/builtin.ts";

/** A live backend on one target. */
export interface LiveTarget {
  /** `name/target`, as the selector prints it. */
  readonly label: string;
  readonly backend: AttentionBackend;
}

/** A target that was not run, and why. */
export interface SkippedTarget {
  readonly label: string;
  readonly reason: string;
}

/** Options for {@linkcode liveTargets}. */
export interface TargetFilter {
  /** A built-in name or module path; every built-in when absent. */
  readonly backend?: string;
  /** `auto` or one target. @default "auto" */
  readonly target?: Target | "auto";
}

/** Creates every matching available target; the caller disposes them. */
export async function liveTargets(
  filter: TargetFilter = {},
): Promise<{ live: LiveTarget[]; skipped: SkippedTarget[] }> {
  const registry = builtinRegistry();
  const definitions = filter.backend
    ? [await registry.load(filter.backend)]
    : await registry.loadAll();
  const live: LiveTarget[] = [], skipped: SkippedTarget[] = [];
  for (const def of definitions) {
    for (const t of def.targets) {
      const label = `${def.name}/${t.target}`;
      const wanted = (filter.target ?? "auto") === "auto" ||
        filter.target === t.target;
      if (!wanted) continue;
      const probe = await t.probe();
      if (!probe.available) {
        skipped.push({ label, reason: probe.reason });
        continue;
      }
      try {
        live.push({ label, backend: await t.create() });
      } catch (e) {
        skipped.push({ label, reason: (e as Error).message });
      }
    }
  }
  if (filter.target && filter.target !== "auto" && live.length === 0) {
    throw new Error(
      `No backend is available on target ${filter.target}: ${
        skipped.map((s) => `${s.label}: ${s.reason}`).join("; ") ||
        "none declares it"
      }`,
    );
  }
  return { live, skipped };
}

/** Disposes every live target, ignoring errors from already-released ones. */
export async function disposeAll(live: readonly LiveTarget[]): Promise<void> {
  for (const t of live) {
    try {
      await t.backend.dispose();
    } catch { /* already released */ }
  }
}
