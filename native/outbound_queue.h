#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "counters.h"

namespace iottly {

// kReport: a callback-error frame, queued like a call (same bound, same lane) but never counted as one.
enum class FrameKind : uint8_t { kControl, kCall, kReport, kTelemetry };

// An immutable batch of frames, shared by the Frames that point into it. Its reference count is
// not atomic: a batch of 500 frames took 500 atomic increments on the JS thread and 500 atomic
// decrements on the I/O thread, under the queue's mutex, and that was most of the hand-off's time.
// The rule that makes a plain count safe: a ChunkRef is copied or destroyed only by the one thread
// that has the chunk to itself (before it is queued), or under IoLoop's mutex, which guards every
// Frame in the queue.
class ChunkRef {
 public:
  ChunkRef() = default;
  explicit ChunkRef(std::string bytes) : c_(new Chunk{std::move(bytes), 1}) {}
  ChunkRef(const ChunkRef& o) : c_(o.c_) {
    if (c_) c_->refs++;
  }
  ChunkRef(ChunkRef&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  ChunkRef& operator=(const ChunkRef& o) {
    if (c_ != o.c_) {
      Release();
      c_ = o.c_;
      if (c_) c_->refs++;
    }
    return *this;
  }
  ChunkRef& operator=(ChunkRef&& o) noexcept {
    if (this != &o) {
      Release();
      c_ = o.c_;
      o.c_ = nullptr;
    }
    return *this;
  }
  ~ChunkRef() { Release(); }

  explicit operator bool() const { return c_ != nullptr; }
  const std::string* operator->() const { return &c_->bytes; }

 private:
  struct Chunk {
    std::string bytes;
    size_t refs;
  };
  void Release() {
    if (c_ && --c_->refs == 0) delete c_;
    c_ = nullptr;
  }
  Chunk* c_ = nullptr;
};

// One complete frame (newline included) inside an immutable chunk shared by the frames of a batch.
struct Frame {
  ChunkRef chunk;
  uint32_t offset = 0;
  uint32_t size = 0;
  const char* data() const { return chunk->data() + offset; }
};

// The outbound queue and its policy, the native twin of FrameQueue + JsTransport's bookkeeping.
// Not thread-safe: the owner (IoLoop) guards it with its mutex. Frames taken for a write live in
// the in-flight list until Settle() learns from the byte count which were written whole.
class OutboundQueue {
 public:
  OutboundQueue(size_t maxBufferedMsgs, uint64_t maxQueueBytes)
      : maxBufferedMsgs_(maxBufferedMsgs), maxQueueBytes_(maxQueueBytes) {}
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;
  OutboundQueue(OutboundQueue&&) = delete;
  OutboundQueue& operator=(OutboundQueue&&) = delete;

  // Appends telemetry frames and applies the bound for the link state; returns how many were dropped.
  // `written`: bytes of them the kernel already took, only when the queue was Idle() before (they
  // were next on the wire); those frames are counted, and one cut short is kept as the partial frame.
  size_t PushTelemetry(ChunkRef chunk, const std::vector<uint32_t>& sizes, bool linked, size_t written,
                       Counters& counters);
  // Queues a call (or, with `report`, a report frame) ahead of telemetry. Returns false, queueing
  // nothing, when the call and report frames not yet written would pass maxQueueBytes with it: an
  // agent that does not read must not make them grow without bound.
  bool PushCall(Frame frame, bool report);
  void PushControl(Frame frame) { PushBack(control_, controlBytes_, std::move(frame)); }

  // Moves the next frames into the in-flight list and describes them in `iov`: a half-written frame
  // first, then control, calls and (unless held) telemetry. Returns the byte count described.
  size_t Take(std::vector<iovec>& iov, bool held, size_t maxBytes);
  // `n` bytes of the last Take() reached the kernel: count whole frames, keep a cut one as partial,
  // put the untouched rest back in front of their queues.
  void Settle(size_t n, Counters& counters);
  // The connection is gone: a cut telemetry frame goes back whole, cut or queued calls are dropped,
  // control frames are forgotten. Returns the number of calls dropped (report frames are not counted).
  size_t Reset();
  // After Reset() on link loss: keep the newest maxBufferedMsgs. Returns how many were dropped.
  size_t TrimToCount();
  // Drops all telemetry; returns how many.
  size_t ClearTelemetry();

  bool HasWritable(bool held) const {
    return partial_.frame.chunk || !control_.empty() || !calls_.empty() || !committed_.empty() ||
           (!held && !telemetry_.empty());
  }
  bool Idle() const {
    return !partial_.frame.chunk && control_.empty() && calls_.empty() && committed_.empty() && telemetry_.empty();
  }
  // Call frames (not reports) queued, in flight or partly written.
  size_t CallsPending() const { return callsPending_; }
  // Telemetry queued or in flight, as JsTransport counts it for `buffered` and the high-water mark.
  size_t TelemetryCount() const;
  uint64_t TelemetryBytes() const;

 private:
  struct Taken {
    FrameKind kind;
    Frame frame;
  };
  struct Partial {
    FrameKind kind = FrameKind::kControl;
    Frame frame;
    uint32_t written = 0;
  };

  static void PushBack(std::deque<Frame>& q, uint64_t& bytes, Frame frame) {
    bytes += frame.size;
    q.push_back(std::move(frame));
  }
  void PutBack(Taken&& t);
  void CountWritten(FrameKind kind, uint32_t size, Counters& counters);

  const size_t maxBufferedMsgs_;
  const uint64_t maxQueueBytes_;
  std::deque<Frame> control_;
  // Calls and reports share one lane, in the order they came.
  std::deque<Taken> calls_;
  std::deque<Frame> telemetry_;
  // Telemetry taken for a write that the kernel did not accept yet. Like the JS transport's
  // in-flight batches it is out of reach of the byte bound and goes out first, so dropping under
  // pressure leaves one gap (between what was committed and the newest), never several.
  std::deque<Frame> committed_;
  uint64_t committedBytes_ = 0;
  uint64_t controlBytes_ = 0;
  uint64_t callBytes_ = 0;
  // Call and report bytes not fully written (queued, in flight, partial): what the bound applies to.
  uint64_t callPendingBytes_ = 0;
  size_t callsPending_ = 0;
  uint64_t telemetryBytes_ = 0;
  Partial partial_;
  std::vector<Taken> inFlight_;
  // Bytes of the first in-flight frame already written on an earlier call.
  uint32_t firstSkip_ = 0;
  size_t inFlightTelemetry_ = 0;
  uint64_t inFlightTelemetryBytes_ = 0;
};

}  // namespace iottly
