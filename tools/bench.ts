/**
 * `deno task bench <kind> [flags]`: one entry point for every benchmark.
 * A kind is either a `deno bench` file (run as a child process) or a module
 * whose `main(args)` runs in-process and returns an exit code. Adding a
 * kind is one line in {@linkcode KINDS}.
 *
 * @module
 */

/** A benchmark kind: what it measures and how to run it. */
export interface BenchKind {
  readonly describe: string;
  /** The file that runs it, relative to the repository root. */
  readonly source: string;
  run(args: string[]): Promise<number>;
}

const ROOT = new URL("..", import.meta.url);

/** A `deno bench` file, relative to the repository root; extra flags go to `deno bench`. */
function denoBench(file: string, describe: string): BenchKind {
  return {
    describe,
    source: file,
    async run(args) {
      const { code } = await new Deno.Command(Deno.execPath(), {
        args: ["bench", "--allow-read", "--allow-env", ...args, file],
        cwd: ROOT,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      return code;
    },
  };
}

/** A module, relative to this file, exporting `main(args): Promise<number>`. */
function inProcess(module: string, describe: string): BenchKind {
  return {
    describe,
    source: new URL(module, import.meta.url).href.slice(ROOT.href.length),
    async run(args) {
      const { main } = await import(module);
      return await main(args);
    },
  };
}

/** Every kind, by name. */
export const KINDS: Readonly<Record<string, BenchKind>> = {
  codecs: denoBench(
    "bench/codecs_bench.ts",
    "KV codec encode/decode throughput (deno bench)",
  ),
  serve: inProcess(
    "../bench/serve.ts",
    "serving throughput, TTFT, TPOT, batch size per KV dtype (prefill-heavy, decode-heavy)",
  ),
  kernels: inProcess(
    "../bench/kernels.ts",
    "attention kernel time, KV read GB/s vs measured memory bandwidth, 8-bit/16-bit ratio per backend x dtype (--target native|webgpu)",
  ),
  accuracy: inProcess(
    "../bench/accuracy.ts",
    "attention accuracy vs the fp64 oracle: kernels per cache variant, needle retrieval (8-bit storage, emulated 8-bit compute), demo-model log-likelihood",
  ),
  "model-ops": inProcess(
    "../bench/model_ops.ts",
    "ops targets: matmul GFLOP/s (typescript vs native per kernel path), demo-model tokens/s and where a decode step's time goes",
  ),
  forward: inProcess(
    "../bench/webgpu_forward.ts",
    "demo-model greedy tokens/s: host forward pass vs the WebGPU forward pass (--tokens N)",
  ),
  "fa3-decode": inProcess(
    "../bench/fa3_decode.ts",
    "native fa3 int8/fp8 decode attention vs xformers bf16 at 8k and 32k tokens (--reps N)",
  ),
};

/** The usage text, listing the kinds. */
export function usage(): string {
  const width = Math.max(...Object.keys(KINDS).map((k) => k.length));
  return `Usage: deno task bench <kind> [flags]   (deno task bench <kind> --help for its flags)

Kinds:
${
    Object.entries(KINDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.describe}`)
      .join("\n")
  }`;
}

/** Dispatches argv to a kind; returns the exit code. */
export async function dispatch(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === "--help" || kind === "-h") {
    console.log(usage());
    return kind === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!entry) {
    console.error(
      `error: Unknown benchmark kind "${kind}": use one of ${
        Object.keys(KINDS).join(", ")
      }\n\n${usage()}`,
    );
    return 2;
  }
  return await entry.run(rest);
}

if (import.meta.main) Deno.exit(await dispatch(Deno.args));
