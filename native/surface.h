#pragma once

// What JavaScript sees of the addon besides its methods: the event codes of the list handed to the
// onEvents callback, and the order of the values counters() writes. Both are written here only.
// The C++ code is generated from these lists (IoEvent::Type in io_loop.h, Counters in counters.h,
// NativeTransport::ReadCounters), binding.cc exports them as `events` and `counterFields`, and
// src/transport/addon.ts refuses an addon whose tables differ from its own.
//
// To add an event or a counter: add a line here, handle it in src/transport/addon.ts (NativeEvent /
// the counter names) and src/transport/native.ts, and raise kAbiVersion in binding.cc together with
// NATIVE_ABI_VERSION in src/transport/addon.ts.

// X(enumerator in IoEvent::Type, name in JavaScript, code). Codes are part of the interface: never
// reuse one for another meaning.
#define IOTTLY_EVENTS(X)            \
  X(kLink, link, 1)                 \
  X(kUnlink, unlink, 2)             \
  X(kConnectError, connectError, 3) \
  X(kFrames, frames, 4)             \
  X(kOversize, oversize, 5)         \
  X(kDrop, drop, 6)                 \
  X(kDrain, drain, 7)               \
  X(kStopped, stopped, 8)           \
  X(kCallsDropped, callsDropped, 9)

// The values of counters(out), in the order they are written. KEPT(name) is a running total in
// struct Counters, kept by the I/O thread; LIVE(name) is a gauge measured when counters() is called
// (NativeTransport::ReadCounters has a local variable of that name). Names are TransportCounters'
// in src/transport/types.ts.
#define IOTTLY_COUNTER_FIELDS(KEPT, LIVE) \
  KEPT(written)                           \
  KEPT(bytesWritten)                      \
  LIVE(buffered)                          \
  LIVE(bufferedBytes)                     \
  KEPT(droppedOverflow)                   \
  KEPT(droppedStop)                       \
  KEPT(droppedCalls)                      \
  KEPT(callsWritten)                      \
  KEPT(reconnects)                        \
  KEPT(connectErrors)                     \
  KEPT(oversizeFrames)                    \
  LIVE(callsBuffered)
