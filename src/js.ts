import type { TransportChoice } from './options';
import { IottlySDK as BaseSDK } from './sdk';

/** IottlySDK pinned to the pure-JS transport, whatever the options or environment say. */
export class IottlySDK extends BaseSDK {
  protected override transportChoice(): TransportChoice {
    return 'js';
  }
}

export { DisconnectedSDK, InvalidAgentVersion, TransportUnavailable, ValueError } from './errors';
export { DEFAULT_SOCKET_PATH } from './options';
export type { IottlySDKOptions } from './options';
export type * from './types';
export { workerHandler } from './workers/handler';
export type { WorkerHandler, WorkerHandlerOptions } from './workers/handler';
export type { WorkerPoolOptions } from './workers/options';
export { SDK_VERSION } from './version';
