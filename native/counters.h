#pragma once

#include <cstdint>

namespace iottly {

// Mirrors TransportCounters in src/transport/types.ts (buffered/bufferedBytes are computed on demand).
struct Counters {
  uint64_t written = 0;
  uint64_t bytesWritten = 0;
  uint64_t droppedOverflow = 0;
  uint64_t droppedStop = 0;
  uint64_t droppedCalls = 0;
  uint64_t callsWritten = 0;
  uint64_t reconnects = 0;
  uint64_t connectErrors = 0;
  uint64_t oversizeFrames = 0;
};

}  // namespace iottly
