#include "io_loop.h"

#include "test_fault.h"

#include <poll.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace iottly {

namespace {
// Bytes described to one sendmsg(): large enough to amortise the call, small enough for the
// socket buffer to take most of it (a Unix stream socket buffers about 200 KiB by default).
constexpr size_t kWriteBatchBytes = 256 * 1024;
constexpr size_t kReadBytes = 64 * 1024;
// Bounded rounds per loop iteration so reads and wake-ups are served during a long burst.
constexpr int kWriteRounds = 8;
constexpr int kReadRounds = 8;
constexpr uint64_t kInboundSlack = 256 * 1024;
// How long a graceful stop waits for the agent's EOF after our half-close (within stopTimeoutMs).
constexpr int kCloseGraceMs = 200;

int MillisUntil(std::chrono::steady_clock::time_point when) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(when - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>((left.count() + 999) / 1000);
}

ChunkRef MakeChunk(std::string s) {
  return ChunkRef(std::move(s));
}

// Inbound bytes an event stands for in the read-ahead accounting.
uint64_t InboundBytes(const IoEvent& e) {
  if (e.type == IoEvent::kFrames) return e.bytes.size();
  if (e.type == IoEvent::kOversize) return e.count * e.lines;
  return 0;
}
}  // namespace

IoLoop::IoLoop(IoOptions options, std::function<void()> notify)
    : options_(std::move(options)),
      notify_(std::move(notify)),
      queue_(options_.maxBufferedMsgs, options_.maxQueueBytes),
      watch_(options_.socketPath),
      splitter_(options_.maxFrameBytes) {}

IoLoop::~IoLoop() {
  Abort();
}

void IoLoop::Start(std::string hello) {
  if (thread_.joinable()) return;
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  {
    std::lock_guard<std::mutex> lk(mu_);
    hello_ = std::move(hello);
    state_ = State::kIdle;
    quit_ = false;
    held_ = false;
    // A 'drain' armed before a stop is not owed to this run: JavaScript forgot its wait at the stop.
    needDrain_ = false;
    wantPollOut_ = false;
    writeError_ = 0;
    stopRequested_ = false;
    stoppedPending_ = false;
    ended_ = false;
    goodbyeQueued_ = false;
    sleeping_ = false;
    queuedInbound_ = 0;
    deliveredInbound_ = 0;
    retryAt_ = Clock::now();
  }
  if (readBuf_.empty()) readBuf_.resize(kReadBytes);
  try {
    thread_ = std::thread(&IoLoop::Run, this);
  } catch (...) {
    close(wakeFd_);
    wakeFd_ = -1;
    throw;
  }
}

IoLoop::PushResult IoLoop::PushTelemetry(const char* data, size_t n, std::string* owned, bool wantDrain) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stopRequested_) {
    // stop() is in progress: the goodbye must be the last frame on the connection, and the thread
    // may already have queued or written it, so nothing sent now is written; it is dropped as 'stop'.
    const size_t frames = CountFrames(data, n);
    counters_.droppedStop += frames;
    return PushResult{0, frames, queue_.TelemetryCount(), queue_.TelemetryBytes()};
  }
  // A lone frame (the first of a synchronous run, so every message at the rates boards send) goes
  // to the kernel at once from the caller's memory, as uv_try_write does, when nothing is queued:
  // no copy, no allocation, no wake-up of the I/O thread. What the kernel leaves is queued below
  // like any batch, the bytes it took already counted. Batches go to the I/O thread: writing 64 KiB
  // here cost the JavaScript thread more than waking it (the copy, and waking the agent's reader).
  if (wantDrain) needDrain_ = true;
  ssize_t sent = 0;
  int err = 0;
  const bool tried = n > 0 && std::memchr(data, '\n', n) == data + n - 1 && CanWriteDirect() && queue_.Idle();
  if (tried) {
    iovec iov{const_cast<char*>(data), n};
    sent = SendIov(fd_, &iov, 1, err);
    if (sent == static_cast<ssize_t>(n)) {
      counters_.written += CountFrames(data, n);
      counters_.bytesWritten += n;
      AfterWrite(sent, err, n);
      return PushResult{0, 0, queue_.TelemetryCount(), queue_.TelemetryBytes()};
    }
  }
  std::vector<uint32_t> sizes;
  size_t start = 0;
  while (start < n) {
    const void* hit = std::memchr(data + start, '\n', n - start);
    const size_t end = hit ? static_cast<const char*>(hit) - data + 1 : n;
    sizes.push_back(static_cast<uint32_t>(end - start));
    start = end;
  }
  ChunkRef chunk = MakeChunk(owned ? std::move(*owned) : std::string(data, n));
  const size_t taken = sent > 0 ? static_cast<size_t>(sent) : 0;
  const size_t dropped =
      queue_.PushTelemetry(std::move(chunk), sizes, state_ == State::kLinked, taken, counters_);
  counters_.droppedOverflow += dropped;
  // The kernel took part or nothing: the I/O thread waits for room, or reads past an error.
  if (tried) AfterWrite(sent, err, n);
  // Already under the mark (the thread wrote meanwhile): 'drain' follows at once.
  if (wantDrain) CheckDrain();
  if (state_ == State::kLinked && !held_) Wake();
  return PushResult{dropped, 0, queue_.TelemetryCount(), queue_.TelemetryBytes()};
}

bool IoLoop::PushCall(std::string frame, bool report) {
  const uint32_t size = static_cast<uint32_t>(frame.size());
  auto chunk = MakeChunk(std::move(frame));
  std::lock_guard<std::mutex> lk(mu_);
  // A broken write side (writeError_) will not write it: the link is about to be declared lost.
  if (state_ != State::kLinked || stopRequested_ || writeError_ != 0 ||
      !queue_.PushCall(Frame{std::move(chunk), 0, size}, report)) {
    if (!report) counters_.droppedCalls++;
    return false;
  }
  Wake();
  return true;
}

void IoLoop::Hold(bool held) {
  std::lock_guard<std::mutex> lk(mu_);
  held_ = held;
  if (!held) Wake();
}

void IoLoop::RequestStop(std::string goodbye, uint32_t timeoutMs) {
  std::lock_guard<std::mutex> lk(mu_);
  goodbye_ = std::move(goodbye);
  const bool wasRequested = stopRequested_;
  stopRequested_ = true;
  stopDeadline_ = Clock::now() + std::chrono::milliseconds(timeoutMs);
  if (ended_ && !wasRequested) {
    // The thread already ended on an exception it could not recover from: nobody else will say
    // 'stopped', and stop() must still resolve (and join it).
    counters_.droppedCalls += queue_.Reset();
    const size_t dropped = queue_.ClearTelemetry();
    counters_.droppedStop += dropped;
    SetStopped(dropped);
    return;
  }
  Wake();
}

size_t IoLoop::DropQueued() {
  std::lock_guard<std::mutex> lk(mu_);
  counters_.droppedCalls += queue_.Reset();
  const size_t n = queue_.ClearTelemetry();
  counters_.droppedStop += n;
  return n;
}

namespace {
// glibc gives each thread that allocates an arena of its own and keeps the arena's freed pages when
// the thread exits; hand them back so that stopped transports leave RSS where it was.
void ReleaseFreedMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}
}  // namespace

void IoLoop::ReleaseBuffers() {
  // The thread has ended: what it kept for the next read or write goes now, before the trim, rather
  // than when the garbage collector finalizes this object, after which nothing trims. Start() makes
  // them again.
  std::vector<char>().swap(readBuf_);
  std::vector<iovec>().swap(iov_);
  splitter_.Reset();
}

void IoLoop::Abort() {
  if (thread_.joinable()) {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
    sleeping_ = true;  // force the eventfd write: the thread may be anywhere
    Wake();
  }
  Join();
}

void IoLoop::Join() {
  if (thread_.joinable()) {
    thread_.join();
    watch_.Close();
    ReleaseBuffers();
    ReleaseFreedMemory();
    // Telemetry sent from now on is kept for the next start(), no longer refused as 'stop'.
    std::lock_guard<std::mutex> lk(mu_);
    stopRequested_ = false;
    ended_ = false;
  }
  if (wakeFd_ >= 0) {
    close(wakeFd_);
    wakeFd_ = -1;
  }
}

std::vector<IoEvent> IoLoop::TakeEvents(bool& stopped, uint64_t& stoppedDropped) {
  std::vector<IoEvent> out;
  std::lock_guard<std::mutex> lk(mu_);
  out.swap(events_);
  deliveredInbound_ += queuedInbound_;
  queuedInbound_ = 0;
  stopped = stoppedPending_;
  stoppedDropped = stoppedDropped_;
  stoppedPending_ = false;
  return out;
}

void IoLoop::Requeue(std::vector<IoEvent>&& events, bool stopped, uint64_t stoppedDropped) {
  std::lock_guard<std::mutex> lk(mu_);
  const bool wasIdle = events_.empty() && !stoppedPending_;
  if (stopped) {
    stoppedPending_ = true;
    stoppedDropped_ = stoppedDropped;
  }
  uint64_t bytes = 0;
  for (const IoEvent& e : events) bytes += InboundBytes(e);
  bytes = std::min(bytes, deliveredInbound_);
  deliveredInbound_ -= bytes;
  try {
    // In front of whatever the thread posted since, to keep the order.
    events.insert(events.end(), std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.swap(events);
    queuedInbound_ += bytes;
  } catch (...) {
    // Not even that: these events are lost (the 'stopped' flag is not). Reading must not wait for a
    // consumed() that will not come for their frames.
  }
  if (readPaused_) {
    readPaused_ = false;
    Wake();
  }
  if (wasIdle && (!events_.empty() || stoppedPending_)) notify_();
}

void IoLoop::InboundConsumed() {
  std::lock_guard<std::mutex> lk(mu_);
  // Everything handed over so far has been handled; batches still waiting in events_ have not.
  deliveredInbound_ = 0;
  if (readPaused_) {
    readPaused_ = false;
    Wake();
  }
}

void IoLoop::ReadCounters(Counters& out, size_t& buffered, uint64_t& bufferedBytes, size_t& callsBuffered) {
  std::lock_guard<std::mutex> lk(mu_);
  out = counters_;
  buffered = queue_.TelemetryCount();
  bufferedBytes = queue_.TelemetryBytes();
  callsBuffered = queue_.CallsPending();
}

void IoLoop::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    try {
      RunLoop(lk);
      break;
    } catch (...) {
      // Out of memory (or any other exception) in the loop: escaping the thread would be
      // std::terminate, taking the application down for what is a lost connection at worst.
      if (!lk.owns_lock()) lk.lock();
      if (!Recover(lk)) break;
    }
  }
  ended_ = true;
}

bool IoLoop::Recover(std::unique_lock<std::mutex>& lk) {
  try {
    if (quit_) {
      CloseSocket();
      return false;
    }
    if (stopRequested_) {
      FinishStop(lk);
      return false;
    }
    // What was being read or written is in an unknown state: drop the connection and start over,
    // as after a socket error (the partial line goes with it; the queue re-sends cut telemetry).
    if (state_ == State::kLinked) {
      LinkLost(ENOMEM, "io");
    } else if (state_ == State::kConnecting) {
      ConnectFailed(ENOMEM);
    } else {
      retryAt_ = Clock::now() + std::chrono::milliseconds(options_.reconnectIntervalMs);
    }
    return true;
  } catch (...) {
    // Even that failed: end the thread. Closing and flagging allocate nothing, so stop() resolves.
    if (!lk.owns_lock()) lk.lock();
    CloseSocket();
    if (stopRequested_) SetStopped(0);
    return false;
  }
}

void IoLoop::RunLoop(std::unique_lock<std::mutex>& lk) {
  for (;;) {
    if (quit_) {
      // The environment is going away: the process exits with the SDK unref'd, or a worker thread
      // ends. What was sent before has been handed over, and the kernel may take it still: write
      // what it takes at once (as the JS transport's last write() does), wait for nothing.
      if (state_ == State::kLinked) WriteSome(lk);
      CloseSocket();
      return;
    }
    if (stopRequested_) {
      held_ = false;
      // A failed write: no goodbye can follow on this connection.
      if (state_ != State::kLinked || Clock::now() >= stopDeadline_ || writeError_ != 0 ||
          (goodbyeQueued_ && queue_.Idle())) {
        FinishStop(lk);
        return;
      }
      if (!goodbyeQueued_ && queue_.Idle()) {
        const uint32_t size = static_cast<uint32_t>(goodbye_.size());
        queue_.PushControl(Frame{MakeChunk(goodbye_), 0, size});
        goodbyeQueued_ = true;
      }
    }
    if (state_ == State::kIdle && !stopRequested_ && Clock::now() >= retryAt_) TryConnect();
    const bool writable = state_ == State::kLinked && !WritesHeldForTest();
    if (writable && !wantPollOut_) WriteSome(lk);
    // Stopping: an empty queue means the goodbye is next (or done), so go round again at once.
    if (quit_ || (stopRequested_ && (state_ != State::kLinked || queue_.Idle()))) continue;

    pollfd fds[2] = {{wakeFd_, POLLIN, 0}, {fd_, 0, 0}};
    nfds_t nfds = 1;
    if (state_ == State::kConnecting) {
      fds[1].events = POLLOUT;
      nfds = 2;
    } else if (state_ == State::kIdle && watch_.fd() >= 0) {
      fds[1] = {watch_.fd(), POLLIN, 0};
      nfds = 2;
    } else if (state_ == State::kLinked) {
      readPaused_ = queuedInbound_ + deliveredInbound_ >= options_.maxFrameBytes + kInboundSlack;
      fds[1].events = static_cast<short>((readPaused_ ? 0 : POLLIN) | (wantPollOut_ ? POLLOUT : 0));
      // Paused with nothing to write: leave the socket out, or a hang-up would wake us in a loop.
      if (fds[1].events == 0) fds[1].fd = -1;
      nfds = 2;
    }
    int timeout = -1;
    if (writable && !wantPollOut_ && writeError_ == 0 && queue_.HasWritable(held_)) {
      timeout = 0;
    } else if (state_ == State::kIdle) {
      timeout = MillisUntil(retryAt_);
    }
    if (stopRequested_) {
      const int left = MillisUntil(stopDeadline_);
      if (timeout < 0 || left < timeout) timeout = left;
    }
    sleeping_ = timeout != 0;
    lk.unlock();
    const int ready = poll(fds, nfds, timeout);
    lk.lock();
    sleeping_ = false;
    if (ready <= 0) continue;
    if (fds[0].revents & POLLIN) {
      uint64_t value;
      while (read(wakeFd_, &value, sizeof value) < 0 && errno == EINTR) {
      }
    }
    if (nfds < 2 || fds[1].revents == 0) continue;
    if (state_ == State::kIdle) {
      // The socket path changed: try now rather than at the next retry.
      if (fds[1].fd == watch_.fd() && watch_.Handle()) {
        retryAt_ = Clock::now();
        refusedDelayMs_ = 0;
      }
    } else if (state_ == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err == 0) Connected();
      else ConnectFailed(err);
    } else if (state_ == State::kLinked) {
      if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) wantPollOut_ = false;
      if ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) && !readPaused_) ReadSome(lk);
    }
  }
}

void IoLoop::TryConnect() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socketPath.size() >= sizeof addr.sun_path) {
    ConnectFailed(ENAMETOOLONG);
    return;
  }
  std::memcpy(addr.sun_path, options_.socketPath.data(), options_.socketPath.size());
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    ConnectFailed(errno);
    return;
  }
  int r;
  do {
    r = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    Connected();
  } else if (errno == EINPROGRESS) {
    state_ = State::kConnecting;
  } else {
    ConnectFailed(errno);
  }
}

void IoLoop::Connected() {
  state_ = State::kLinked;
  // Linked: no watch needed until the link is lost (an inotify watch is a limited resource).
  watch_.Disarm();
  refusedDelayMs_ = 0;
  if (connections_++ > 0) counters_.reconnects++;
  held_ = false;
  wantPollOut_ = false;
  readPaused_ = false;
  splitter_.Reset();
  // The hello goes first on every connection: nothing is half written and control leads the queue.
  queue_.PushControl(Frame{MakeChunk(hello_), 0, static_cast<uint32_t>(hello_.size())});
  Post(IoEvent{IoEvent::kLink});
}

void IoLoop::ConnectFailed(int err) {
  CloseSocket();
  counters_.connectErrors++;
  IoEvent event{IoEvent::kConnectError};
  event.error = err;
  event.syscall = "connect";
  Post(std::move(event));
  ScheduleRetry(err == ECONNREFUSED);
}

void IoLoop::ScheduleRetry(bool refused) {
  uint32_t delay = options_.reconnectIntervalMs;
  if (watch_.Arm()) {
    // The agent may have bound its socket between the failed attempt and the watch: no event would
    // come for that, so look once, now that the watch is in place.
    if (!refused && access(options_.socketPath.c_str(), F_OK) == 0) refused = true;
    refusedDelayMs_ = refused ? NextRefusedDelay(refusedDelayMs_) : 0;
    delay = refused ? refusedDelayMs_ : kWatchedRetryMs;
  }
  retryAt_ = Clock::now() + std::chrono::milliseconds(delay);
}

void IoLoop::LinkLost(int err, const char* syscall) {
  CloseSocket();
  const size_t calls = queue_.Reset();
  counters_.droppedCalls += calls;
  splitter_.Reset();
  // A connection closed while stopping is the stop's business: no unlink, everything left is 'stop'.
  if (stopRequested_) return;
  if (calls > 0) {
    IoEvent lost{IoEvent::kCallsDropped};
    lost.count = calls;
    Post(std::move(lost));
  }
  const size_t dropped = queue_.TrimToCount();
  if (dropped > 0) {
    counters_.droppedOverflow += dropped;
    IoEvent drop{IoEvent::kDrop};
    drop.count = dropped;
    Post(std::move(drop));
  }
  IoEvent event{IoEvent::kUnlink};
  event.error = err;
  event.syscall = syscall;
  Post(std::move(event));
  // The agent may still listen (it closed this connection only) or come back at once: retry soon.
  ScheduleRetry(true);
}

bool IoLoop::CanWriteDirect() const {
  // The I/O thread may be inside its own sendmsg (writing_), or waiting for room (wantPollOut_).
  return state_ == State::kLinked && !held_ && !wantPollOut_ && !writing_ && writeError_ == 0 && !WritesHeldForTest();
}

size_t IoLoop::CountFrames(const char* data, size_t n) {
  // Frames end in '\n' (a JSON frame holds no raw newline); a tail without one is a frame too.
  const size_t lines = static_cast<size_t>(std::count(data, data + n, '\n'));
  return n > 0 && data[n - 1] != '\n' ? lines + 1 : lines;
}

ssize_t IoLoop::SendIov(int fd, iovec* iov, size_t count, int& err) {
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  err = n < 0 ? errno : 0;
  return n;
}

bool IoLoop::Written(ssize_t n, int err, size_t bytes) {
  queue_.Settle(n > 0 ? static_cast<size_t>(n) : 0, counters_);
  return AfterWrite(n, err, bytes);
}

bool IoLoop::AfterWrite(ssize_t n, int err, size_t bytes) {
  if (n < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) {
      wantPollOut_ = true;
    } else {
      // EPIPE and the like: the agent closed, often right after writing. What it wrote may still
      // be in our receive buffer; the reference reads it, so ReadSome drains it (under the
      // read-ahead bound) and declares the link lost once there is no more.
      writeError_ = err;
      wantPollOut_ = false;
    }
    return false;
  }
  CheckDrain();
  if (static_cast<size_t>(n) < bytes) {
    wantPollOut_ = true;
    return false;
  }
  return true;
}

void IoLoop::WriteSome(std::unique_lock<std::mutex>& lk) {
  if (writeError_ != 0) return;
  for (int round = 0; round < kWriteRounds && state_ == State::kLinked; round++) {
    iov_.clear();
    const size_t bytes = queue_.Take(iov_, held_, kWriteBatchBytes);
    if (iov_.empty()) return;
    const int fd = fd_;
    int err = 0;
    writing_ = true;
    lk.unlock();
    const ssize_t n = SendIov(fd, iov_.data(), iov_.size(), err);
    lk.lock();
    writing_ = false;
    if (!Written(n, err, bytes)) return;
  }
}

void IoLoop::ReadSome(std::unique_lock<std::mutex>& lk) {
  LineBatch batch;
  const int fd = fd_;
  bool eof = false;
  int err = 0;
  const uint64_t bound = options_.maxFrameBytes + kInboundSlack;
  const uint64_t room = bound - std::min<uint64_t>(queuedInbound_ + deliveredInbound_, bound);
  // After a failed write, read until the buffer is empty (EAGAIN), not just one short read.
  const bool draining = writeError_ != 0;
  bool drained = false;
  lk.unlock();
  for (int round = 0; round < kReadRounds && batch.bytes.size() + batch.oversizeBytes < room; round++) {
    const ssize_t n = read(fd, readBuf_.data(), readBuf_.size());
    if (n > 0) {
      splitter_.Push(readBuf_.data(), static_cast<size_t>(n), batch);
      if (!draining && static_cast<size_t>(n) < readBuf_.size()) break;
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) drained = true;
    else err = errno;
    break;
  }
  if (!batch.sizes.empty() && TestFaultFires(TestFault::kIo)) throw std::bad_alloc();
  lk.lock();
  for (const OversizeRun& run : batch.oversize) {
    counters_.oversizeFrames += run.count;
    // A run of the length of the last pending one joins it: a flood of identical oversize lines is
    // one event however long JavaScript is away.
    if (!events_.empty() && events_.back().type == IoEvent::kOversize && events_.back().count == run.bytes) {
      events_.back().lines += run.count;
      continue;
    }
    IoEvent event{IoEvent::kOversize};
    event.count = run.bytes;
    event.lines = run.count;
    Post(std::move(event));
  }
  queuedInbound_ += batch.oversizeBytes;
  if (!batch.sizes.empty()) {
    queuedInbound_ += batch.bytes.size();
    IoEvent event{IoEvent::kFrames};
    event.bytes = std::move(batch.bytes);
    event.sizes = std::move(batch.sizes);
    Post(std::move(event));
  }
  if (draining && (eof || err != 0 || drained)) {
    // Everything received is posted: the link is lost, for the reason first seen.
    LinkLost(writeError_, "write");
  } else if (eof || err != 0) {
    LinkLost(err, "read");
  }
}

void IoLoop::FinishStop(std::unique_lock<std::mutex>& lk) {
  watch_.Disarm();
  if (state_ == State::kLinked) CloseGracefully(lk);
  CloseSocket();
  counters_.droppedCalls += queue_.Reset();
  const size_t dropped = queue_.ClearTelemetry();
  counters_.droppedStop += dropped;
  splitter_.Reset();
  held_ = false;
  SetStopped(dropped);
}

void IoLoop::SetStopped(uint64_t dropped) {
  // A flag rather than an event: setting it allocates nothing, so it cannot fail.
  const bool idle = events_.empty() && !stoppedPending_;
  stoppedPending_ = true;
  stoppedDropped_ = dropped;
  if (idle) notify_();
}

void IoLoop::CloseGracefully(std::unique_lock<std::mutex>& lk) {
  // Closing a Unix socket with unread input resets the connection (the agent's next read fails
  // with ECONNRESET and it may discard frames it had not read yet). So: half-close, read and
  // discard until the agent's EOF, briefly, then close.
  const int fd = fd_;
  const Clock::time_point until = std::min(stopDeadline_, Clock::now() + std::chrono::milliseconds(kCloseGraceMs));
  shutdown(fd, SHUT_WR);
  lk.unlock();
  for (;;) {
    const ssize_t n = read(fd, readBuf_.data(), readBuf_.size());
    if (n > 0) continue;
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    const int left = MillisUntil(until);
    if (left <= 0) break;
    pollfd fds[2] = {{fd, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    if (poll(fds, 2, left) <= 0) break;
    if (fds[1].revents & POLLIN) {
      uint64_t value;
      while (read(wakeFd_, &value, sizeof value) < 0 && errno == EINTR) {
      }
      lk.lock();
      const bool quit = quit_;
      lk.unlock();
      if (quit) break;
    }
  }
  lk.lock();
}

bool IoLoop::WritesHeldForTest() const {
  return kTestFault == TestFault::kHoldWrites && counters_.bytesWritten > 0;
}

void IoLoop::CloseSocket() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  state_ = State::kIdle;
  wantPollOut_ = false;
  writeError_ = 0;
}

void IoLoop::CheckDrain() {
  if (needDrain_ && state_ == State::kLinked && queue_.TelemetryBytes() < options_.highWaterMark) {
    needDrain_ = false;
    Post(IoEvent{IoEvent::kDrain});
  }
}

void IoLoop::Post(IoEvent&& event) {
  // A delivery is already due when events or the 'stopped' flag wait.
  const bool first = events_.empty() && !stoppedPending_;
  events_.push_back(std::move(event));
  // Quitting: the environment is being torn down and will not take a delivery.
  if (first && !quit_) notify_();
}

void IoLoop::Wake() {
  if (!sleeping_ || wakeFd_ < 0) return;
  sleeping_ = false;
  const uint64_t one = 1;
  while (write(wakeFd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace iottly
