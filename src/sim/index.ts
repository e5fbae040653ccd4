export { DEFAULT_SOCKET_PATH, DEFAULT_AGENT_VERSION, DEFAULT_MAX_FRAME_BYTES, AgentSimulator } from './simulator';
export type { SimOptions, AgentSimulatorEvents } from './simulator';
export type { SimClient } from './connection';
export type { FrameRecord, TelemetryRecord, CallRecord, ErrorRecord, InvalidRecord, SimCounts } from './records';
export type { RebootOptions } from './scenarios';
