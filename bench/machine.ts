import process from "node:process";

/**
 * Where and when a benchmark ran: CPU model, cores, load, Deno version, git
 * commit and date, so that a results file says what its numbers mean.
 *
 * @module
 */

/** The facts a results file records. */
export interface MachineInfo {
  /** CPU model name from /proc/cpuinfo, or "unknown". */
  readonly cpu: string;
  readonly cores: number;
  /** 1-minute load average at the start (other processes share the cores). */
  readonly loadAverage: string;
  readonly deno: string;
  readonly os: string;
  /** `git rev-parse --short HEAD`, or "unknown". */
  readonly commit: string;
  /** True when `git status --porcelain` lists changes. */
  readonly dirty: boolean;
  /** ISO 8601, UTC. */
  readonly date: string;
}

/** Reads the machine facts; missing sources become "unknown", never errors. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readText("/proc/cpuinfo");
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ??
    "unknown";
  const load = await loadAverage();
  const commit = (await git(["rev-parse", "--short", "HEAD"])) || "unknown";
  const status = await git(["status", "--porcelain"]);
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    loadAverage: load,
    deno: Deno.version.deno,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    commit,
    dirty: status.length > 0,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}

/**
 * One line for a results file.
 *
 * @example Usage
 * ```ts
 * import { describeMachine } from "./machine.ts";
 * import assert from "node:assert/strict";
 *
 * const line = describeMachine({
 *   cpu: "AMD EPYC", cores: 2, loadAverage: "1.5", deno: "2.9.6",
 *   os: "linux x86_64", commit: "abc1234", dirty: true, date: "2025-01-01T00:00:00Z",
 * });
 * assert.match(line, /AMD EPYC, 2 cores/);
 * assert.match(line, /abc1234 \(with uncommitted changes\)/);
 * ```
 */
export function describeMachine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores (${m.os}), load average ${m.loadAverage} at start; Deno ${m.deno}; commit ${m.commit}${
    m.dirty ? " (with uncommitted changes)" : ""
  }; ${m.date}`;
}

/** The 1-minute load average from /proc/loadavg, or "unknown". */
export async function loadAverage(): Promise<string> {
  return (await readText("/proc/loadavg")).split(" ")[0] || "unknown";
}

/**
 * CPU seconds (user + system, all threads) this process has used so far
 * (getrusage, through node:process, which needs no permission). On a
 * shared machine this moves much less with other processes' load than
 * wall time does.
 */
export function processCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * A /proc file's text, or "". Deno asks for --allow-all to read /proc, so
 * without it the file is read through `cat` (--allow-run).
 */
async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return await output("cat", [path]);
  }
}

async function git(args: string[]): Promise<string> {
  return await output("git", args);
}

/** A command's trimmed stdout, or "" when it fails or cannot run. */
async function output(command: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(command, {
      args,
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}
