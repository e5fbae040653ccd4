import type { DropReason, TransportKind } from './transport';

/** 'started', 'stopped', or an agentstatus value passed through as received (e.g. 'stopping'). */
export type AgentStatus = 'started' | 'stopping' | 'stopped' | (string & {});
export type ConnectionStatus = 'connected' | 'disconnected' | (string & {});

export type AgentStatusCallback = (status: AgentStatus) => unknown;
export type ConnectionStatusCallback = (status: ConnectionStatus) => unknown;
export type CommandCallback = (params: any) => unknown;

export interface DropInfo {
  /** Messages dropped since the previous 'drop' event, by reason. */
  counts: Partial<Record<DropReason, number>>;
  /** All messages dropped since the SDK was created. */
  total: number;
}

export interface ProtocolErrorInfo {
  reason: string;
  /** Length in bytes of the skipped frame. */
  bytes: number;
  /** The start of the frame, for logs (at most 200 bytes, decoded leniently). */
  sample: string;
}

export interface CallbackErrorInfo {
  /** 'command:<type>', 'agentStatus' or 'connectionStatus'. */
  source: string;
  error: unknown;
}

export interface IottlySDKEvents {
  agentStatus: [status: AgentStatus];
  connectionStatus: [status: ConnectionStatus];
  drain: [];
  drop: [info: DropInfo];
  protocolError: [info: ProtocolErrorInfo];
  connectError: [error: Error];
  callbackError: [info: CallbackErrorInfo];
}

export interface SDKStats {
  transport: TransportKind;
  /** Messages accepted by send(). */
  accepted: number;
  /** Messages handed to the kernel on the agent's socket. */
  written: number;
  dropped: { overflow: number; stop: number; total: number };
  /** Messages accepted and neither written nor dropped yet. */
  buffered: number;
  bufferedBytes: number;
  bytesWritten: number;
  framesReceived: number;
  /** Inbound frames skipped as invalid or oversize. */
  framesSkipped: number;
  /** Well-formed signals this SDK does not know, ignored. */
  framesIgnored: number;
  commandsDispatched: number;
  commandsUnhandled: number;
  callsWritten: number;
  callsDropped: number;
  reconnects: number;
  connectErrors: number;
  callbackErrors: number;
}
