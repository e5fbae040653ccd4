export { IottlySDK } from './sdk';
export { DisconnectedSDK, InvalidAgentVersion, TransportUnavailable, ValueError } from './errors';
export { DEFAULT_SOCKET_PATH } from './options';
export type { IottlySDKOptions, TransportChoice } from './options';
export { workerHandler } from './workers/handler';
export type { WorkerHandler, WorkerHandlerOptions } from './workers/handler';
export type { WorkerPoolOptions } from './workers/options';
export type {
  AgentStatus,
  AgentStatusCallback,
  CallbackErrorInfo,
  CommandCallback,
  CommandDroppedInfo,
  CommandDropReason,
  ConnectionStatus,
  ConnectionStatusCallback,
  DropInfo,
  IottlySDKEvents,
  ProtocolErrorInfo,
  SDKStats,
  WorkerCommandHandler,
  WorkerContext,
} from './types';
export type { TransportKind } from './transport/types';
export { defaultTransport, nativeAvailable, nativeLoadError } from './transport/select';
export { SDK_VERSION } from './version';
