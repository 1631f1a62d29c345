/**
 * `deno task bench accuracy`: how much accuracy the KV cache formats, the
 * backends and 8-bit compute cost, against the fp64 oracle. Sections:
 *
 * - `kernels`: attention output error per backend target x cache variant x
 *   scale source, on K/V with outlier key channels (bench/accuracy/kernels.ts);
 * - `needle`: long-context retrieval for 16/8-bit storage through a backend
 *   and for emulated 8-bit compute with two-level accumulation on and off
 *   (bench/accuracy/needle.ts, bench/accuracy/low_precision_emulation.ts);
 * - `model`: the demo model's log-likelihood and top-1 agreement per KV
 *   dtype against the fp32 cache (bench/accuracy/model.ts).
 *
 * Prints Markdown and writes it, with the command, machine, commit and date,
 * to bench/results/accuracy.md (or --out).
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Target } from "../core/backend.ts";
import { CACHE_VARIANTS, runKernels } from "./accuracy/kernels.ts";
import { secondsSince } from "./accuracy/metrics.ts";
import { runModel } from "./accuracy/model.ts";
import {
  CALIBRATION_TEXT,
  EVAL_TEXT,
  loadDemoModel,
} from "./accuracy/model_support.ts";
import {
  type AttendBackendPair,
  fa3NeedlePaths,
  NEEDLE_PATHS,
  runNeedle,
} from "./accuracy/needle.ts";
import fa3Definition from "../backends/fa3/mod.ts";
import {
  kernelsMarkdown,
  modelMarkdown,
  needleMarkdown,
} from "./accuracy/render.ts";
import { disposeAll, liveTargets } from "./accuracy/targets.ts";
import { describeMachine, machineInfo } from "./machine.ts";

const SECTIONS = ["kernels", "needle", "model", "all"] as const;
const TARGET_FLAGS = ["auto", "native", "webgpu", "reference"] as const;

const HELP = `Usage: deno task bench accuracy [flags]

  --section kernels|needle|model|all   (default: all)
  --backend NAME|./module.ts   kernels: only this backend (default: every built-in available here);
                               needle: the backend for the storage paths (default: reference)
                               model: always the reference backend
  --target auto|native|webgpu|reference   (default: auto = every available target)
  --seed N                     data seed (default: 1)
  --quick                      smaller run: kernels 512/2048, needle 1k-16k x 3 trials, model on the first 263 bytes
  --out FILE                   results file (default: bench/results/accuracy.md)
  -h, --help                   this text`;

/** Runs the benchmark; returns the exit code (2 on a usage error). */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        section: { type: "string", default: "all" },
        backend: { type: "string" },
        target: { type: "string", default: "auto" },
        seed: { type: "string", default: "1" },
        quick: { type: "boolean", default: false },
        out: { type: "string", default: "bench/results/accuracy.md" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (flags.help) return (console.log(HELP), 0);
  const section = flags.section as typeof SECTIONS[number];
  const target = flags.target as Target | "auto";
  const seed = Number(flags.seed);
  const problems = [
    SECTIONS.includes(section)
      ? ""
      : `--section is "${section}": use one of ${SECTIONS.join(", ")}`,
    TARGET_FLAGS.includes(target)
      ? ""
      : `--target is "${target}": use one of ${TARGET_FLAGS.join(", ")}`,
    Number.isInteger(seed)
      ? ""
      : `--seed is "${flags.seed}": pass an integer such as 1`,
  ].filter(Boolean);
  if (problems.length) {
    console.error(`error: ${problems.join("; ")}\n\n${HELP}`);
    return 2;
  }
  const quick = flags.quick;
  const want = (s: string) => section === "all" || section === s;
  const machine = describeMachine(await machineInfo());
  const parts: string[] = [];
  const emit = (md: string) => (console.log(md), parts.push(md));
  const times: string[] = [];
  const started = performance.now();

  if (want("kernels")) {
    const t0 = performance.now();
    const { live, skipped } = await liveTargets({
      backend: flags.backend,
      target,
    });
    try {
      const rows = await runKernels({
        targets: live,
        lengths: quick ? [512, 2048] : [512, 4096],
        seed,
      });
      emit(
        kernelsMarkdown(
          rows,
          skipped,
          "8 query heads, 2 kv heads (GQA 32/8 scaled down), head_dim 128, block size 16; one sequence whose last 8 positions attend (a chunked prefill, causal)",
        ),
      );
    } finally {
      await disposeAll(live);
    }
    times.push(`kernels ${secondsSince(t0)}`);
  }
  if (want("needle")) {
    const t0 = performance.now();
    // Without --backend: the reference (exact math on the stored cache), or
    // the first backend on the --target asked for.
    const { live, skipped } = await liveTargets({
      backend: flags.backend ??
        (target === "auto" || target === "reference" ? "reference" : undefined),
      target,
    });
    if (live.length === 0) {
      console.error(
        `error: No backend target can run the needle section here: ${
          skipped.map((s) => `${s.label}: ${s.reason}`).join("; ")
        }`,
      );
      return 1;
    }
    const trials = quick ? 3 : 12;
    try {
      const lengths = [
        1024,
        2048,
        4096,
        8192,
        16384,
        ...(quick ? [] : [32768]),
      ];
      // The real 8-bit-compute kernels beside the emulation, when fa3's
      // native target is here.
      const fa3 = await fa3Pair();
      const paths = fa3
        ? [...NEEDLE_PATHS, ...fa3NeedlePaths("fa3/native", fa3.on, fa3.off)]
        : NEEDLE_PATHS;
      if (!fa3) {
        console.error(
          "needle: fa3/native is not available here; its rows are left out",
        );
      }
      let cells;
      try {
        cells = await runNeedle({
          target: live[0],
          lengths,
          trials,
          seed,
          paths,
        });
      } finally {
        await fa3?.on.dispose();
        await fa3?.off.dispose();
      }
      emit(needleMarkdown(cells, live[0].label, trials));
    } finally {
      await disposeAll(live);
    }
    times.push(`needle ${secondsSince(t0)}`);
  }
  if (want("model")) {
    const t0 = performance.now();
    const { model, checkpoint } = await loadDemoModel("models/demo-gemma2");
    const text = quick
      ? EVAL_TEXT.slice(0, EVAL_TEXT.indexOf("A time to weep"))
      : EVAL_TEXT;
    const variants = quick
      ? CACHE_VARIANTS.filter((v) => v.kvDtype !== "fp32" && !v.zeroPoint)
        .map((v) => ({
          ...v,
          sources: v.sources.filter((s) =>
            s !== "calibrated" && s !== "default 1.0"
          ),
        }))
      : CACHE_VARIANTS.filter((v) => v.kvDtype !== "fp32");
    const report = await runModel(model, {
      text,
      calibrationText: CALIBRATION_TEXT,
      variants,
    });
    emit(
      modelMarkdown(
        report,
        checkpoint,
        `Ecclesiastes 3:1-8, KJV${quick ? ", first verses" : ""}`,
      ),
    );
    times.push(`model ${secondsSince(t0)}`);
  }
  times.push(`total ${secondsSince(started)}`);
  const command = ["deno task bench accuracy", ...args].join(" ");
  const doc =
    `# Accuracy\n\nCommand: \`${command}\`\n\nMachine: ${machine}\n\nWall time: ${
      times.join(", ")
    }\n\n${parts.join("\n")}`;
  console.log(`Wall time: ${times.join(", ")}`);
  const out = flags.out;
  const dir = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(out, doc);
  console.log(`Wrote ${out}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/** fa3's native target twice, promotion on and off, or undefined when absent. */
async function fa3Pair(): Promise<AttendBackendPair | undefined> {
  const native = fa3Definition.targets.find((t) => t.target === "native");
  if (!native || !(await native.probe()).available) return undefined;
  return {
    on: await native.create({ settings: { accumulationPromotion: true } }),
    off: await native.create({ settings: { accumulationPromotion: false } }),
  };
}
