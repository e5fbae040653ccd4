#include "outbound_queue.h"

#include <climits>

namespace iottly {

namespace {
constexpr size_t kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;
}

size_t OutboundQueue::PushTelemetry(ChunkRef chunk, const std::vector<uint32_t>& sizes, bool linked, size_t written,
                                    Counters& counters) {
  uint32_t offset = 0;
  size_t i = 0;
  // What the kernel already took (the queue was idle, so these frames were next on the wire): whole
  // frames are counted as written, a cut one becomes the partial frame that goes out first.
  for (; i < sizes.size() && written >= sizes[i]; i++) {
    written -= sizes[i];
    CountWritten(FrameKind::kTelemetry, sizes[i], counters);
    offset += sizes[i];
  }
  if (written > 0 && i < sizes.size()) {
    partial_.kind = FrameKind::kTelemetry;
    partial_.frame = Frame{chunk, offset, sizes[i]};
    partial_.written = static_cast<uint32_t>(written);
    offset += sizes[i];
    i++;
  }
  for (; i < sizes.size(); i++) {
    telemetryBytes_ += sizes[i];
    telemetry_.push_back(Frame{chunk, offset, sizes[i]});
    offset += sizes[i];
  }
  size_t dropped = 0;
  if (linked) {
    // Same bound as FrameQueue.trimToBytes: frames in flight are not counted, the newest is kept.
    while (telemetryBytes_ > maxQueueBytes_ && telemetry_.size() > 1) {
      telemetryBytes_ -= telemetry_.front().size;
      telemetry_.pop_front();
      dropped++;
    }
  } else {
    while (telemetry_.size() > maxBufferedMsgs_) {
      telemetryBytes_ -= telemetry_.front().size;
      telemetry_.pop_front();
      dropped++;
    }
  }
  return dropped;
}

bool OutboundQueue::PushCall(Frame frame, bool report) {
  const uint32_t size = frame.size;
  if (callPendingBytes_ + size > maxQueueBytes_) return false;
  callPendingBytes_ += size;
  callBytes_ += size;
  if (!report) callsPending_++;
  calls_.push_back(Taken{report ? FrameKind::kReport : FrameKind::kCall, std::move(frame)});
  return true;
}

size_t OutboundQueue::Take(std::vector<iovec>& iov, bool held, size_t maxBytes) {
  size_t bytes = 0;
  inFlight_.clear();
  auto add = [&](FrameKind kind, Frame&& frame, uint32_t skip) {
    char* data = const_cast<char*>(frame.data()) + skip;
    // Frames of one batch lie end to end in its chunk: one iovec covers them all, which spares
    // the kernel a segment per frame and keeps a write's size bound by maxBytes, not by kMaxIov.
    if (!iov.empty() && static_cast<char*>(iov.back().iov_base) + iov.back().iov_len == data) {
      iov.back().iov_len += frame.size - skip;
    } else {
      iov.push_back(iovec{data, frame.size - skip});
    }
    bytes += frame.size - skip;
    if (kind == FrameKind::kTelemetry) {
      inFlightTelemetry_++;
      inFlightTelemetryBytes_ += frame.size;
    }
    inFlight_.push_back(Taken{kind, std::move(frame)});
  };
  firstSkip_ = 0;
  if (partial_.frame.chunk) {
    firstSkip_ = partial_.written;
    add(partial_.kind, std::move(partial_.frame), partial_.written);
    partial_ = Partial{};
  }
  auto drain = [&](std::deque<Frame>& q, uint64_t& qBytes, FrameKind kind) {
    while (!q.empty() && iov.size() < kMaxIov && (bytes == 0 || bytes + q.front().size <= maxBytes)) {
      qBytes -= q.front().size;
      add(kind, std::move(q.front()), 0);
      q.pop_front();
    }
  };
  drain(control_, controlBytes_, FrameKind::kControl);
  while (!calls_.empty() && iov.size() < kMaxIov && (bytes == 0 || bytes + calls_.front().frame.size <= maxBytes)) {
    callBytes_ -= calls_.front().frame.size;
    add(calls_.front().kind, std::move(calls_.front().frame), 0);
    calls_.pop_front();
  }
  drain(committed_, committedBytes_, FrameKind::kTelemetry);
  if (!held && committed_.empty()) drain(telemetry_, telemetryBytes_, FrameKind::kTelemetry);
  return bytes;
}

void OutboundQueue::Settle(size_t n, Counters& counters) {
  size_t i = 0;
  uint32_t skip = firstSkip_;
  for (; i < inFlight_.size(); i++) {
    const uint32_t remaining = inFlight_[i].frame.size - skip;
    if (n < remaining) break;
    n -= remaining;
    CountWritten(inFlight_[i].kind, inFlight_[i].frame.size, counters);
    if (inFlight_[i].kind == FrameKind::kTelemetry) {
      inFlightTelemetry_--;
      inFlightTelemetryBytes_ -= inFlight_[i].frame.size;
    }
    skip = 0;
  }
  size_t keepFrom = inFlight_.size();
  if (i < inFlight_.size()) {
    Taken& cut = inFlight_[i];
    const uint32_t done = skip + static_cast<uint32_t>(n);
    if (done > 0) {
      // Started but not finished: it must be completed before anything else goes on this connection.
      if (cut.kind == FrameKind::kTelemetry) {
        inFlightTelemetry_--;
        inFlightTelemetryBytes_ -= cut.frame.size;
      }
      partial_.kind = cut.kind;
      partial_.frame = std::move(cut.frame);
      partial_.written = done;
      keepFrom = i + 1;
    } else {
      keepFrom = i;
    }
  }
  for (size_t j = inFlight_.size(); j > keepFrom; j--) PutBack(std::move(inFlight_[j - 1]));
  inFlight_.clear();
  firstSkip_ = 0;
}

void OutboundQueue::PutBack(Taken&& t) {
  const uint32_t size = t.frame.size;
  switch (t.kind) {
    case FrameKind::kControl:
      controlBytes_ += size;
      control_.push_front(std::move(t.frame));
      break;
    case FrameKind::kCall:
    case FrameKind::kReport:
      callBytes_ += size;
      calls_.push_front(std::move(t));
      break;
    case FrameKind::kTelemetry:
      inFlightTelemetry_--;
      inFlightTelemetryBytes_ -= size;
      committedBytes_ += size;
      committed_.push_front(std::move(t.frame));
      break;
  }
}

size_t OutboundQueue::Reset() {
  // Every call not yet written whole (queued or cut) dies with the connection.
  // Frames taken for a write that never settled (an exception between Take and Settle) go back first.
  if (!inFlight_.empty()) {
    Counters unused;
    Settle(0, unused);
  }
  const size_t droppedCalls = callsPending_;
  callsPending_ = 0;
  callPendingBytes_ = 0;
  // Nothing is committed to a connection that is gone: back in front of the queue, in order.
  while (!committed_.empty()) {
    telemetryBytes_ += committed_.back().size;
    telemetry_.push_front(std::move(committed_.back()));
    committed_.pop_back();
  }
  committedBytes_ = 0;
  if (partial_.frame.chunk) {
    if (partial_.kind == FrameKind::kTelemetry) {
      // A cut frame is re-sent whole on the next connection; its written part never counted.
      telemetryBytes_ += partial_.frame.size;
      telemetry_.push_front(std::move(partial_.frame));
    }
    partial_ = Partial{};
  }
  calls_.clear();
  callBytes_ = 0;
  control_.clear();
  controlBytes_ = 0;
  return droppedCalls;
}

size_t OutboundQueue::TrimToCount() {
  size_t dropped = 0;
  while (telemetry_.size() > maxBufferedMsgs_) {
    telemetryBytes_ -= telemetry_.front().size;
    telemetry_.pop_front();
    dropped++;
  }
  return dropped;
}

size_t OutboundQueue::ClearTelemetry() {
  const size_t n = telemetry_.size() + committed_.size();
  telemetry_.clear();
  telemetryBytes_ = 0;
  committed_.clear();
  committedBytes_ = 0;
  return n;
}

size_t OutboundQueue::TelemetryCount() const {
  size_t n = telemetry_.size() + committed_.size() + inFlightTelemetry_;
  if (partial_.frame.chunk && partial_.kind == FrameKind::kTelemetry) n++;
  return n;
}

uint64_t OutboundQueue::TelemetryBytes() const {
  uint64_t n = telemetryBytes_ + committedBytes_ + inFlightTelemetryBytes_;
  if (partial_.frame.chunk && partial_.kind == FrameKind::kTelemetry) n += partial_.frame.size;
  return n;
}

void OutboundQueue::CountWritten(FrameKind kind, uint32_t size, Counters& counters) {
  counters.bytesWritten += size;
  switch (kind) {
    case FrameKind::kTelemetry:
      counters.written++;
      break;
    case FrameKind::kCall:
      counters.callsWritten++;
      callsPending_--;
      callPendingBytes_ -= size;
      break;
    case FrameKind::kReport:
      callPendingBytes_ -= size;
      break;
    case FrameKind::kControl:
      break;
  }
}

}  // namespace iottly
