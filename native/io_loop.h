#pragma once

#include <sys/uio.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "counters.h"
#include "line_splitter.h"
#include "outbound_queue.h"

namespace iottly {

struct IoOptions {
  std::string socketPath;
  uint32_t reconnectIntervalMs = 200;
  size_t maxBufferedMsgs = 10;
  uint64_t maxQueueBytes = 4u << 20;
  uint64_t highWaterMark = 1u << 20;
  size_t maxFrameBytes = 1u << 20;
};

// Something the I/O thread tells JavaScript; delivered in order, many per thread-safe call.
struct IoEvent {
  enum Type : int32_t { kLink = 1, kUnlink, kConnectError, kFrames, kOversize, kDrop, kDrain, kStopped };
  explicit IoEvent(Type t) : type(t) {}
  Type type;
  int32_t error = 0;             // errno for kUnlink / kConnectError, 0 for a clean EOF
  const char* syscall = "";      // "connect", "read" or "write"
  uint64_t count = 0;            // kOversize bytes, kDrop count (reason overflow), kStopped dropped count
  std::string bytes;             // kFrames: the lines back to back
  std::vector<uint32_t> sizes;   // kFrames: their lengths
};

// The socket, its reconnect timer and the outbound queue, driven by one thread per transport.
// Every public method is for the JavaScript thread; the mutex guards what both threads touch.
class IoLoop {
 public:
  // `notify` is called (from the I/O thread) when events become pending after none were.
  IoLoop(IoOptions options, std::function<void()> notify);
  ~IoLoop();
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;
  IoLoop(IoLoop&&) = delete;
  IoLoop& operator=(IoLoop&&) = delete;

  // Starts the thread; throws std::system_error if the eventfd or thread cannot be made.
  void Start(std::string hello);
  bool Running() const { return thread_.joinable(); }

  struct PushResult {
    size_t dropped;
    size_t count;
    uint64_t bytes;
  };
  // `frames` holds complete frames, each ending in '\n'.
  PushResult PushTelemetry(std::string frames, bool wantDrain);
  // Returns false (and counts it) when not linked.
  bool PushCall(std::string frame);
  void Hold(bool held);
  // Asks the thread to flush, say goodbye and end; a kStopped event follows.
  void RequestStop(std::string goodbye, uint32_t timeoutMs);
  // Not running: drop what is queued as 'stop' and return the count.
  size_t DropQueued();
  // Wakes the thread to end at once (environment teardown) and joins it.
  void Abort();
  // Joins the thread once it has ended (after kStopped), closes the eventfd.
  void Join();

  std::vector<IoEvent> TakeEvents();
  // JavaScript has handled the frames it took and let its event loop turn: reading may go on.
  void InboundConsumed();
  void ReadCounters(Counters& out, size_t& buffered, uint64_t& bufferedBytes);

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { kIdle, kConnecting, kLinked };

  void Run();
  void TryConnect();
  void Connected();
  void ConnectFailed(int err);
  void LinkLost(int err, const char* syscall);
  void WriteSome(std::unique_lock<std::mutex>& lk);
  void ReadSome(std::unique_lock<std::mutex>& lk);
  void FinishStop(std::unique_lock<std::mutex>& lk);
  void CloseGracefully(std::unique_lock<std::mutex>& lk);
  void CloseSocket();
  void ReleaseBuffers();
  void CheckDrain();
  void Post(IoEvent&& event);
  void Wake();

  const IoOptions options_;
  const std::function<void()> notify_;

  std::mutex mu_;
  std::thread thread_;
  int wakeFd_ = -1;
  int fd_ = -1;
  State state_ = State::kIdle;
  bool sleeping_ = false;
  bool quit_ = false;
  bool held_ = false;
  bool needDrain_ = false;
  bool wantPollOut_ = false;
  bool stopRequested_ = false;
  bool goodbyeQueued_ = false;
  Clock::time_point retryAt_;
  Clock::time_point stopDeadline_;
  std::string hello_;
  std::string goodbye_;
  uint64_t connections_ = 0;
  // Inbound bytes posted to JavaScript and not yet taken: reading pauses past the bound, so an
  // agent that floods a slow application cannot grow our memory (the kernel buffers, then the
  // agent blocks), as a paused node:net socket would.
  uint64_t pendingInbound_ = 0;
  bool readPaused_ = false;

  OutboundQueue queue_;
  Counters counters_;
  LineSplitter splitter_;  // I/O thread only
  std::vector<IoEvent> events_;
  std::vector<iovec> iov_;  // I/O thread only
  std::vector<char> readBuf_;  // I/O thread only
};

}  // namespace iottly
