// libFuzzer target for native/outbound_queue: the fuzzer drives the queue the way IoLoop does
// (connect and queue the hello, push telemetry and calls, with part of a push written at once when
// the queue is idle, hold, take a batch and let the "kernel" accept any prefix of it, lose the
// link, stop) with small bounds, and checks what reached each
// connection's byte stream against the transport's promises:
//  - every connection starts with its hello; every complete frame is byte-exact as pushed;
//  - telemetry goes out in push order with no duplicate, across connections too (a cut frame is
//    re-sent whole, never repeated once complete); a call goes out at most once, on its connection;
//  - counts add up at every step: queued = pushed - written - dropped; counters match the streams;
//  - the count bound holds while not linked; after a final drain nothing is left and nothing is
//    unaccounted for.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "outbound_queue.h"

namespace {

[[noreturn]] void Fail(const char* what, long a = 0, long b = 0) {
  std::fprintf(stderr, "outbound_queue_fuzz: %s (%ld, %ld)\n", what, a, b);
  std::abort();
}

struct Model {
  explicit Model(size_t maxMsgs, uint64_t maxBytes) : maxBufferedMsgs(maxMsgs), queue(maxMsgs, maxBytes) {}

  const size_t maxBufferedMsgs;
  iottly::OutboundQueue queue;
  iottly::Counters counters;
  bool linked = false;
  bool held = false;
  uint64_t connection = 0;
  std::vector<std::string> telemetry;  // frame text by id (newline included)
  std::vector<std::string> calls;
  std::vector<uint64_t> callConnection;
  std::vector<bool> callSeen;
  uint64_t dropped = 0;
  uint64_t droppedCalls = 0;
  long lastTelemetry = -1;
  uint64_t completeTelemetry = 0;
  uint64_t completeCalls = 0;
  uint64_t completeBytes = 0;
  std::string pending;  // bytes of the current connection after its last complete frame
  bool sawHello = false;

  void CheckCounts() {
    const uint64_t queued = queue.TelemetryCount();
    if (queued != telemetry.size() - counters.written - dropped) {
      Fail("queued telemetry != pushed - written - dropped", long(queued), long(telemetry.size() - counters.written - dropped));
    }
    if ((queued == 0) != (queue.TelemetryBytes() == 0)) Fail("telemetry count and bytes disagree", long(queued), long(queue.TelemetryBytes()));
    if (!linked && queued > maxBufferedMsgs) Fail("more than maxBufferedMsgs kept while not linked", long(queued), long(maxBufferedMsgs));
    if (counters.written != completeTelemetry) Fail("written counter != complete telemetry frames seen", long(counters.written), long(completeTelemetry));
    if (counters.callsWritten != completeCalls) Fail("callsWritten != complete calls seen", long(counters.callsWritten), long(completeCalls));
    if (counters.bytesWritten != completeBytes) Fail("bytesWritten != bytes of complete frames seen", long(counters.bytesWritten), long(completeBytes));
  }

  void Frame(const std::string& line) {
    completeBytes += line.size() + 1;
    if (!sawHello) {
      if (line != "H" + std::to_string(connection)) Fail("a connection did not start with its hello", long(connection));
      sawHello = true;
      return;
    }
    if (line.empty()) Fail("empty frame");
    const long id = std::strtol(line.c_str() + 1, nullptr, 10);
    if (line[0] == 'T') {
      if (id < 0 || size_t(id) >= telemetry.size() || telemetry[id] != line + "\n") Fail("telemetry frame corrupted", id);
      if (id <= lastTelemetry) Fail("telemetry duplicated or reordered", id, lastTelemetry);
      lastTelemetry = id;
      completeTelemetry++;
    } else if (line[0] == 'C') {
      if (id < 0 || size_t(id) >= calls.size() || calls[id] != line + "\n") Fail("call frame corrupted", id);
      if (callSeen[id]) Fail("call written twice", id);
      if (callConnection[id] != connection) Fail("call written on another connection", id);
      callSeen[id] = true;
      completeCalls++;
    } else {
      Fail("unexpected frame kind", line[0]);
    }
  }

  void Written(const std::vector<iovec>& iov, size_t n) {
    for (const iovec& v : iov) {
      if (n == 0) break;
      const size_t take = v.iov_len < n ? v.iov_len : n;
      const char* p = static_cast<const char*>(v.iov_base);
      for (size_t i = 0; i < take; i++) {
        if (p[i] == '\n') {
          Frame(pending);
          pending.clear();
        } else {
          pending.push_back(p[i]);
        }
      }
      n -= take;
    }
  }

  void Connect() {
    linked = true;
    connection++;
    pending.clear();
    sawHello = false;
    const std::string hello = "H" + std::to_string(connection) + "\n";
    queue.PushControl(iottly::Frame{iottly::ChunkRef(hello), 0, uint32_t(hello.size())});
  }

  void LinkLost(bool stop) {
    linked = false;
    pending.clear();  // a cut frame's bytes died with the connection
    droppedCalls += queue.Reset();
    dropped += stop ? queue.ClearTelemetry() : queue.TrimToCount();
  }

  void Write(size_t maxBytes, FuzzedDataProvider* fdp) {
    std::vector<iovec> iov;
    const size_t bytes = queue.Take(iov, held, maxBytes);
    size_t described = 0;
    for (const iovec& v : iov) described += v.iov_len;
    if (described != bytes) Fail("Take() returned a byte count unlike its iovecs", long(bytes), long(described));
    const size_t n = fdp ? fdp->ConsumeIntegralInRange<size_t>(0, bytes) : bytes;
    Written(iov, n);
    queue.Settle(n, counters);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const size_t maxMsgs = fdp.ConsumeIntegralInRange<size_t>(0, 12);
  const uint64_t maxBytes = fdp.ConsumeIntegralInRange<uint64_t>(0, 2048);
  Model m(maxMsgs, maxBytes);

  while (fdp.remaining_bytes() > 0) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {  // a batch of telemetry in one chunk, as IoLoop::PushTelemetry makes it
        const int count = fdp.ConsumeIntegralInRange<int>(1, 8);
        std::string chunk;
        std::vector<uint32_t> sizes;
        for (int i = 0; i < count; i++) {
          const size_t id = m.telemetry.size();
          const std::string frame =
              "T" + std::to_string(id) + ":" + std::string(fdp.ConsumeIntegralInRange<size_t>(0, 300), char('a' + id % 26)) + "\n";
          m.telemetry.push_back(frame);
          chunk += frame;
          sizes.push_back(uint32_t(frame.size()));
        }
        // As IoLoop::PushTelemetry does (for a lone frame): with nothing queued, the caller writes
        // at once and the "kernel" takes any prefix; the queue is told how much.
        size_t written = 0;
        if (m.linked && !m.held && m.queue.Idle() && fdp.ConsumeBool()) {
          written = fdp.ConsumeIntegralInRange<size_t>(0, chunk.size());
          m.Written(std::vector<iovec>{iovec{chunk.data(), written}}, written);
        }
        m.dropped += m.queue.PushTelemetry(iottly::ChunkRef(std::move(chunk)), sizes, m.linked, written, m.counters);
        break;
      }
      case 1:  // IoLoop refuses calls when not linked
        if (m.linked) {
          const size_t id = m.calls.size();
          const std::string frame = "C" + std::to_string(id) + "\n";
          // Over the call bound nothing is queued and nothing is expected at the agent.
          if (!m.queue.PushCall(iottly::Frame{iottly::ChunkRef(frame), 0, uint32_t(frame.size())}, false)) break;
          m.calls.push_back(frame);
          m.callConnection.push_back(m.connection);
          m.callSeen.push_back(false);
        }
        break;
      case 2:
        if (!m.linked) m.Connect();
        break;
      case 3:
      case 4:
        if (m.linked) m.Write(fdp.ConsumeIntegralInRange<size_t>(1, 4096), &fdp);
        break;
      case 5:
        if (m.linked) m.LinkLost(false);
        break;
      case 6:
        m.held = fdp.ConsumeBool();
        break;
      case 7:  // stop
        if (fdp.ConsumeIntegralInRange<int>(0, 3) == 0) m.LinkLost(true);
        break;
    }
    m.CheckCounts();
  }

  // Let a healthy agent take everything: all that was not dropped must arrive.
  m.held = false;
  if (!m.linked) m.Connect();
  for (int i = 0; i < 100000 && !m.queue.Idle(); i++) m.Write(4096, nullptr);
  if (!m.queue.Idle()) Fail("the queue does not drain");
  m.CheckCounts();
  if (m.queue.TelemetryCount() != 0) Fail("telemetry left after the drain", long(m.queue.TelemetryCount()));
  if (m.telemetry.size() != m.counters.written + m.dropped) Fail("pushed != written + dropped", long(m.telemetry.size()), long(m.counters.written + m.dropped));
  if (!m.pending.empty()) Fail("a frame left half written after the drain");
  return 0;
}
