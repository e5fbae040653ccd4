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
#include "path_watch.h"
#include "surface.h"

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
// kStopped is never queued as an event: it is a flag (IoLoop::stoppedPending_), so that no failed
// allocation or delivery can lose it.
struct IoEvent {
  // The codes JavaScript sees: IOTTLY_EVENTS in surface.h.
  enum Type : int32_t {
#define IOTTLY_EVENT_ENUMERATOR(enumerator, js, code) enumerator = code,
    IOTTLY_EVENTS(IOTTLY_EVENT_ENUMERATOR)
#undef IOTTLY_EVENT_ENUMERATOR
  };
  explicit IoEvent(Type t) : type(t) {}
  Type type;
  int32_t error = 0;             // errno for kUnlink / kConnectError, 0 for a clean EOF
  const char* syscall = "";      // "connect", "read", "write" or "io" (an exception on the I/O thread)
  // kOversize bytes of each skipped line, kDrop count (reason overflow), kCallsDropped count
  uint64_t count = 0;
  uint64_t lines = 1;            // kOversize: how many consecutive skipped lines had that length
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
    size_t dropped;      // by the buffer policy (reason 'overflow')
    size_t droppedStop;  // refused because stop() is in progress (reason 'stop'), already counted
    size_t count;
    uint64_t bytes;
  };
  // `data` holds complete frames, each ending in '\n', in memory that is the caller's only for the
  // call; `owned`, when not null, holds the same bytes and may be taken instead of copying them.
  PushResult PushTelemetry(const char* data, size_t n, std::string* owned, bool wantDrain);
  // Returns false when not linked, stopping, or over the call bound; a call (not a report) is then
  // counted in droppedCalls.
  bool PushCall(std::string frame, bool report);
  void Hold(bool held);
  // Asks the thread to flush, say goodbye and end; a kStopped event follows.
  void RequestStop(std::string goodbye, uint32_t timeoutMs);
  // Not running: drop what is queued as 'stop' and return the count.
  size_t DropQueued();
  // Wakes the thread to end at once (environment teardown) and joins it.
  void Abort();
  // Joins the thread once it has ended (after kStopped), closes the eventfd.
  void Join();

  // The pending events, and whether the thread has ended after a stop (then `stoppedDropped` is the
  // count of telemetry dropped for it).
  std::vector<IoEvent> TakeEvents(bool& stopped, uint64_t& stoppedDropped);
  // A delivery of what TakeEvents() gave could not be made: put it back in front, to go next time.
  void Requeue(std::vector<IoEvent>&& events, bool stopped, uint64_t stoppedDropped);
  // JavaScript has handled the frames it took and let its event loop turn: reading may go on.
  void InboundConsumed();
  void ReadCounters(Counters& out, size_t& buffered, uint64_t& bufferedBytes, size_t& callsBuffered);

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { kIdle, kConnecting, kLinked };

  void Run();
  // The loop proper; returns when the thread should end.
  void RunLoop(std::unique_lock<std::mutex>& lk);
  // After an exception escaped the loop: tear the link down and go on; false if the thread must end.
  bool Recover(std::unique_lock<std::mutex>& lk);
  void SetStopped(uint64_t dropped);
  void TryConnect();
  void Connected();
  void ConnectFailed(int err);
  void LinkLost(int err, const char* syscall);
  void WriteSome(std::unique_lock<std::mutex>& lk);
  // Sets retryAt_ after a failed attempt or a lost link (see src/transport/retry.ts).
  void ScheduleRetry(bool refused);
  // Under mu_, on the JavaScript thread: it may write frames pushed onto an empty queue to the
  // socket itself (see PushTelemetry), the I/O thread being neither in its own write nor waiting
  // for room.
  bool CanWriteDirect() const;
  // Frames in `data`: its newlines, and a tail without one.
  static size_t CountFrames(const char* data, size_t n);
  // One non-blocking sendmsg of `iov` (EINTR retried): the bytes written, or -1 with `err` set.
  static ssize_t SendIov(int fd, iovec* iov, size_t count, int& err);
  // Settles the queue after a write of `bytes` that wrote `n` (or failed with `err`), and notes what
  // the I/O thread must do next (wait for room, read past an error). True when all of it went out.
  bool Written(ssize_t n, int err, size_t bytes);
  // Written() once the queue knows what went out: what the I/O thread must do next, 'drain' if due.
  bool AfterWrite(ssize_t n, int err, size_t bytes);
  // IOTTLY_SDK_TEST_FAULT=hold-writes: nothing is written after the hello (test_fault.h).
  bool WritesHeldForTest() const;
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
  // The I/O thread is inside sendmsg with mu_ released: the JavaScript thread must not write meanwhile.
  bool writing_ = false;
  bool stopRequested_ = false;
  bool goodbyeQueued_ = false;
  Clock::time_point retryAt_;
  Clock::time_point stopDeadline_;
  std::string hello_;
  std::string goodbye_;
  uint64_t connections_ = 0;
  // Inbound bytes (kept lines and skipped oversize lines) posted for JavaScript and not yet consumed:
  // reading pauses past the bound, so an agent that floods a slow application cannot grow our memory
  // (the kernel buffers, then the agent blocks), as a paused node:net socket would. Split in what
  // still waits in events_ and what deliveries handed over: consumed() settles only the latter, as
  // batches posted meanwhile are not handled yet.
  uint64_t queuedInbound_ = 0;
  uint64_t deliveredInbound_ = 0;
  bool readPaused_ = false;
  // A write failed (errno): nothing more is written, but what the agent sent before it went is read
  // (under the read-ahead bound) before the link is declared lost.
  int writeError_ = 0;
  // The thread ended after a stop and JavaScript has not been told yet (see IoEvent).
  bool stoppedPending_ = false;
  uint64_t stoppedDropped_ = 0;
  // The thread has returned (stopped, or ended by an exception it could not recover from).
  bool ended_ = false;

  OutboundQueue queue_;
  // The socket path, watched while the agent is away (I/O thread only; closed by Join()).
  PathWatch watch_;
  // The last wait after a refused connection while watched (0: none yet).
  uint32_t refusedDelayMs_ = 0;
  Counters counters_;
  LineSplitter splitter_;  // I/O thread only
  std::vector<IoEvent> events_;
  std::vector<iovec> iov_;  // I/O thread only
  std::vector<char> readBuf_;  // I/O thread only
};

}  // namespace iottly
