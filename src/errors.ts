/** Raised by callAgent() while no agent is linked; retry after the 'started' status. */
export class DisconnectedSDK extends Error {
  readonly code = 'ERR_IOTTLY_DISCONNECTED';
  constructor(message = 'the SDK is not connected to an iottly agent') {
    super(message);
    this.name = 'DisconnectedSDK';
  }
}

/** Raised by callAgent() when the agent is older than 1.8.0 (or its version was never learnt). */
export class InvalidAgentVersion extends Error {
  readonly code = 'ERR_IOTTLY_AGENT_VERSION';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAgentVersion';
  }
}

/** Raised by send() for a message that JSON cannot represent faithfully. */
export class ValueError extends Error {
  readonly code = 'ERR_IOTTLY_VALUE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ValueError';
  }
}

/** Raised when transport: 'native' is asked for and the addon cannot be loaded. */
export class TransportUnavailable extends Error {
  readonly code = 'ERR_IOTTLY_TRANSPORT_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportUnavailable';
  }
}
