export { IottlySDK } from './sdk';
export { DisconnectedSDK, InvalidAgentVersion, TransportUnavailable, ValueError } from './errors';
export { DEFAULT_SOCKET_PATH } from './options';
export type { IottlySDKOptions, TransportChoice } from './options';
export { workerHandler } from './worker-handler';
export type { WorkerHandler, WorkerHandlerOptions } from './worker-handler';
export type { WorkerPoolOptions } from './worker-options';
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
export type { TransportKind } from './transport';
export { defaultTransport, nativeAvailable, nativeLoadError } from './loader';
export { SDK_VERSION } from './version';
