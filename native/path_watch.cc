#include "path_watch.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace iottly {

namespace {

constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF |
                           IN_MOVE_SELF | IN_ONLYDIR;

std::string Dirname(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

// open(O_PATH | O_DIRECTORY) rather than stat(): the same permission needs (search on the parents),
// and no stat symbol, which glibc 2.33 versioned anew, so the prebuilds still load on glibc 2.32.
bool IsDirectory(const std::string& p) {
  const int fd = open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// `dir` if it is a directory, else its nearest ancestor that is; empty if none is.
std::string NearestDirectory(std::string dir) {
  for (;;) {
    if (IsDirectory(dir)) return dir;
    const std::string parent = Dirname(dir);
    if (parent == dir) return std::string();
    dir = parent;
  }
}

}  // namespace

PathWatch::PathWatch(const std::string& socketPath) {
  std::string full = socketPath;
  if (full.empty() || full[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != nullptr) full = std::string(cwd) + "/" + full;
  }
  dir_ = Dirname(full);
  const size_t slash = full.find_last_of('/');
  base_ = slash == std::string::npos ? full : full.substr(slash + 1);
  const char* fault = std::getenv("IOTTLY_SDK_TEST_FAULT");
  disabled_ = fault != nullptr && std::strcmp(fault, "no-watch") == 0;
}

PathWatch::~PathWatch() {
  Close();
}

void PathWatch::Close() {
  Disarm();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool PathWatch::Arm() {
  if (disabled_) return false;
  const std::string target = NearestDirectory(dir_);
  if (target.empty()) {
    Disarm();
    return false;
  }
  if (wd_ >= 0 && target == target_) return true;
  Disarm();
  if (fd_ < 0) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return false;
  }
  // ENOSPC (the watch limit), EACCES: the transport polls instead.
  wd_ = inotify_add_watch(fd_, target.c_str(), kMask);
  if (wd_ < 0) return false;
  target_ = target;
  return true;
}

void PathWatch::Disarm() {
  if (wd_ >= 0) inotify_rm_watch(fd_, wd_);  // fails harmlessly for a watch the kernel dropped
  wd_ = -1;
  target_.clear();
}

bool PathWatch::Handle() {
  if (fd_ < 0) return false;
  bool changed = false;
  bool rearm = false;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->wd != wd_) continue;  // from a watch removed since
      if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        rearm = true;  // the watched directory went: watch an ancestor
      } else if (target_ != dir_) {
        rearm = true;  // watching an ancestor: a directory of the path may have appeared
      } else if (ev->len == 0 || base_ == ev->name) {
        changed = true;
      }
    }
  }
  if (rearm) {
    const std::string before = target_;
    if (before != dir_) {
      Arm();
      if (target_ == dir_) changed = true;  // the socket's directory exists now
    } else {
      wd_ = -1;  // the kernel dropped it with the directory
      target_.clear();
      Arm();
      changed = true;
    }
  }
  return changed;
}

}  // namespace iottly
