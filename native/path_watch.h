#pragma once

#include <cstdint>
#include <string>

namespace iottly {

// While the path is watched: the longest wait between two attempts, and the wait after a refused
// connection (1 ms, four times longer each time, up to the former). Twins of src/transport/retry.ts.
constexpr uint32_t kWatchedRetryMs = 5000;
inline uint32_t NextRefusedDelay(uint32_t previous) {
  return previous == 0 ? 1 : (previous >= kWatchedRetryMs / 4 ? kWatchedRetryMs : previous * 4);
}

// Watches the agent's socket path with inotify, on the I/O thread: the socket's directory, or its
// nearest existing ancestor while that directory is missing (moved deeper as the path appears).
// The twin of src/transport/path-watch.ts. Not thread-safe: the I/O thread owns it.
class PathWatch {
 public:
  explicit PathWatch(const std::string& socketPath);
  ~PathWatch();
  PathWatch(const PathWatch&) = delete;
  PathWatch& operator=(const PathWatch&) = delete;

  // Starts watching, or moves the watch to the deepest existing directory of the path. Returns
  // whether a watch is in place (false: no inotify, the watch limit reached, IOTTLY_SDK_TEST_FAULT=no-watch).
  bool Arm();
  // Stops watching (the inotify descriptor is kept for the next Arm()).
  void Disarm();
  // Stops watching and closes the inotify descriptor (the transport stops: it leaves no descriptor).
  void Close();
  // The descriptor to poll for POLLIN while armed, else -1.
  int fd() const { return wd_ >= 0 ? fd_ : -1; }
  // Reads the pending events; returns whether the socket path may have changed.
  bool Handle();

 private:
  std::string dir_;
  std::string base_;
  std::string target_;  // the directory watched now
  int fd_ = -1;
  int wd_ = -1;
  bool disabled_ = false;
};

}  // namespace iottly
