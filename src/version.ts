/** The SDK's own version, announced in the hello; 1.3.0 and later support sdkinit and call. */
export const SDK_VERSION = '1.3.0';
