#include "line_splitter.h"

#include <cstring>

namespace iottly {

void LineSplitter::Push(const char* data, size_t n, LineBatch& out) {
  size_t start = 0;
  while (start < n) {
    const void* hit = std::memchr(data + start, '\n', n - start);
    if (hit == nullptr) {
      Keep(data + start, n - start);
      return;
    }
    const size_t nl = static_cast<const char*>(hit) - data;
    if (partial_.empty() && !skipping_ && nl - start <= max_) {
      // Common case: the whole line is inside this read, so skip the partial buffer.
      size_t len = nl - start;
      if (len > 0 && data[start + len - 1] == '\r') len--;
      if (len > 0) {
        out.bytes.append(data + start, len);
        out.sizes.push_back(static_cast<uint32_t>(len));
      }
    } else {
      Keep(data + start, nl - start);
      Finish(out);
    }
    start = nl + 1;
  }
}

void LineSplitter::Reset() {
  partial_.clear();
  partial_.shrink_to_fit();
  skipping_ = false;
  skipped_ = 0;
}

void LineSplitter::Keep(const char* data, size_t n) {
  if (n == 0) return;
  if (skipping_) {
    skipped_ += n;
    return;
  }
  if (partial_.size() + n > max_) {
    skipping_ = true;
    skipped_ = partial_.size() + n;
    partial_.clear();
    partial_.shrink_to_fit();
    return;
  }
  partial_.append(data, n);
}

void LineSplitter::Finish(LineBatch& out) {
  if (skipping_) {
    if (!out.oversize.empty() && out.oversize.back().bytes == skipped_) out.oversize.back().count++;
    else out.oversize.push_back(OversizeRun{skipped_, 1});
    out.oversizeBytes += skipped_;
    skipping_ = false;
    skipped_ = 0;
    return;
  }
  size_t len = partial_.size();
  if (len > 0 && partial_[len - 1] == '\r') len--;
  if (len > 0) {
    out.bytes.append(partial_.data(), len);
    out.sizes.push_back(static_cast<uint32_t>(len));
  }
  partial_.clear();
}

}  // namespace iottly
