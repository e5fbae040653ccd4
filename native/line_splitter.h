#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace iottly {

// Consecutive skipped lines of one length: a flood of identical oversize lines costs one entry.
struct OversizeRun {
  uint64_t bytes;  // the length of each line
  uint64_t count;
  bool operator==(const OversizeRun& o) const { return bytes == o.bytes && count == o.count; }
};

// Inbound lines found in one read, packed: `bytes` holds them back to back, `sizes` their lengths.
struct LineBatch {
  std::string bytes;
  std::vector<uint32_t> sizes;
  // Lines longer than the limit that were skipped, in the order they ended, as runs of equal lengths.
  std::vector<OversizeRun> oversize;
  // Their total length: it counts towards the read-ahead bound like kept bytes, or an agent pouring
  // oversize lines would be read without pause however far behind JavaScript is.
  uint64_t oversizeBytes = 0;

  bool empty() const { return sizes.empty() && oversize.empty(); }
  void clear() {
    bytes.clear();
    sizes.clear();
    oversize.clear();
    oversizeBytes = 0;
  }
};

// Splits a byte stream at '\n' exactly like src/transport/line-splitter.ts: a line over maxFrameBytes is
// skipped to the next newline without being kept, a trailing '\r' is removed, empty lines vanish.
class LineSplitter {
 public:
  explicit LineSplitter(size_t maxFrameBytes) : max_(maxFrameBytes) {}
  LineSplitter(const LineSplitter&) = delete;
  LineSplitter& operator=(const LineSplitter&) = delete;
  LineSplitter(LineSplitter&&) = delete;
  LineSplitter& operator=(LineSplitter&&) = delete;

  void Push(const char* data, size_t n, LineBatch& out);
  // Forget a partial line: the connection that carried it is gone.
  void Reset();

 private:
  void Keep(const char* data, size_t n);
  void Finish(LineBatch& out);

  const size_t max_;
  std::string partial_;
  bool skipping_ = false;
  uint64_t skipped_ = 0;
};

}  // namespace iottly
