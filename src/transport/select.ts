import { TransportUnavailable } from '../errors';
import { JsTransport } from './js';
import type { TransportChoice } from '../options';
import type { Transport, TransportEvents, TransportFactory, TransportKind, TransportOptions } from './types';

let nativeFactory: TransportFactory | null | undefined;
let nativeError: Error | null = null;

/** Loads the native transport once; a missing or broken build is remembered, never thrown here. */
function loadNative(): TransportFactory | null {
  if (nativeFactory === undefined) {
    try {
      // Resolved lazily so that a JS-only install never touches the addon.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const mod = require('./native') as { createNativeTransport?: TransportFactory };
      if (typeof mod.createNativeTransport !== 'function') throw new Error('native transport module has no factory');
      nativeFactory = mod.createNativeTransport;
    } catch (err) {
      nativeFactory = null;
      nativeError = err as Error;
    }
  }
  return nativeFactory;
}

function envChoice(): TransportChoice | null {
  const value = process.env.IOTTLY_SDK_TRANSPORT;
  return value === 'js' || value === 'native' ? value : null;
}

/** Whether the native addon is built and loads in this process. */
export function nativeAvailable(): boolean {
  return loadNative() !== null;
}

/** Why the native addon could not be loaded, or null if it loads. */
export function nativeLoadError(): Error | null {
  loadNative();
  return nativeError;
}

/** The transport that 'auto' picks in this process. */
export function defaultTransport(): TransportKind {
  const env = envChoice();
  if (env === 'js') return 'js';
  return nativeAvailable() ? 'native' : 'js';
}

export function createTransport(choice: TransportChoice, options: TransportOptions, events: TransportEvents): Transport {
  if (choice === 'auto') choice = envChoice() ?? 'auto';
  if (choice === 'js') return new JsTransport(options, events);
  const factory = loadNative();
  if (factory) return factory(options, events);
  if (choice === 'native') {
    throw new TransportUnavailable(
      `the native transport is not available (${nativeError?.message ?? 'not built'}); ` +
        'build it with `npm rebuild iottly-sdk` (a C++ compiler and CMake or node-gyp needed; in a clone of the SDK: `npm run build:native`) or use transport: "js"',
      { cause: nativeError },
    );
  }
  return new JsTransport(options, events);
}
