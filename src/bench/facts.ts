// The facts about the machine a reader of the figures needs: CPU, cores, Node, and which native
// addon loaded (a local build or a prebuild), since figures from one say little about the other.

import * as os from 'node:os';
import * as path from 'node:path';
import { nativeAvailable, nativeLoadError } from '../index';
import { addonCandidates } from '../transport/addon';
import { SDK_VERSION } from '../version';

export interface BoardFacts {
  cpuModel: string;
  cores: number;
  arch: string;
  platform: string;
  osRelease: string;
  node: string;
  totalMemoryMB: number;
  /** 1-minute load average when the run began (0 where the OS has none). */
  loadAverage: number;
  sdkVersion: string;
}

export interface NativeFacts {
  loads: boolean;
  /** 'local build' (build/Release), 'prebuild' (prebuilds/), 'IOTTLY_SDK_NATIVE_PATH', or null. */
  origin: 'local build' | 'prebuild' | 'IOTTLY_SDK_NATIVE_PATH' | null;
  /** The .node file that loaded, relative to the package when inside it. */
  file: string | null;
  /** Why it does not load (first line), or null. */
  error: string | null;
}

export function boardFacts(): BoardFacts {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()).filter((m) => m.length > 0))];
  return {
    // big.LITTLE boards report two models; an empty list (some ARM kernels) says so.
    cpuModel: models.length ? models.join(' + ') : 'unknown (the OS reports no CPU model)',
    cores: cpus.length || (typeof os.availableParallelism === 'function' ? os.availableParallelism() : 1),
    arch: process.arch,
    platform: process.platform,
    osRelease: os.release(),
    node: process.version,
    totalMemoryMB: Math.round(os.totalmem() / 1048576),
    loadAverage: os.loadavg()[0] ?? 0,
    sdkVersion: SDK_VERSION,
  };
}

export function nativeFacts(): NativeFacts {
  if (!nativeAvailable()) {
    const err = nativeLoadError();
    return { loads: false, origin: null, file: null, error: err ? err.message.split('\n')[0]! : 'not built' };
  }
  // The loaded build is the candidate in require's cache (addon.ts tries them in order).
  const candidates = addonCandidates();
  const used = candidates.find((f) => require.cache[f] !== undefined) ?? null;
  const root = path.join(__dirname, '..', '..');
  let origin: NativeFacts['origin'] = null;
  if (used !== null) {
    if (process.env.IOTTLY_SDK_NATIVE_PATH && used === candidates[0]) origin = 'IOTTLY_SDK_NATIVE_PATH';
    else if (used.startsWith(path.join(root, 'prebuilds') + path.sep)) origin = 'prebuild';
    else if (used.startsWith(path.join(root, 'build') + path.sep)) origin = 'local build';
  }
  const file = used === null ? null : used.startsWith(root + path.sep) ? path.relative(root, used) : used;
  return { loads: true, origin, file, error: null };
}
