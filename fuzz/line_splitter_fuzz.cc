// libFuzzer target for native/line_splitter: the inbound frame parser. The input is cut into reads
// of fuzzer-chosen sizes (with an occasional Reset(), a dropped connection) and fed to a
// LineSplitter with a small fuzzer-chosen limit; the lines and oversize reports must equal what a
// plain reference split of the same stream gives. Any difference or sanitizer report is a crash.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "line_splitter.h"

namespace {

struct Expected {
  std::vector<std::string> lines;
  std::vector<uint64_t> oversize;
};

// The contract, written plainly: a line is what lies between newlines; one longer than `max` raw
// bytes is reported by its raw length; otherwise one trailing '\r' goes and an empty line vanishes.
void Reference(const std::string& stream, size_t max, Expected& out) {
  size_t start = 0;
  for (;;) {
    const size_t nl = stream.find('\n', start);
    if (nl == std::string::npos) return;  // an unfinished line is never reported
    std::string line = stream.substr(start, nl - start);
    if (line.size() > max) {
      out.oversize.push_back(line.size());
    } else {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) out.lines.push_back(line);
    }
    start = nl + 1;
  }
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "line_splitter_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const size_t max = fdp.ConsumeIntegralInRange<size_t>(0, 64);
  iottly::LineSplitter splitter(max);
  Expected want;
  std::vector<std::string> gotLines;
  std::vector<uint64_t> gotOversize;
  std::string stream;  // bytes since the last Reset()

  while (fdp.remaining_bytes() > 0) {
    const bool reset = fdp.ConsumeIntegralInRange<uint8_t>(0, 31) == 0;
    if (reset) {
      Reference(stream, max, want);
      stream.clear();
      splitter.Reset();
      continue;
    }
    const size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 96);
    const std::string chunk = fdp.ConsumeBytesAsString(n);
    stream += chunk;
    iottly::LineBatch batch;
    splitter.Push(chunk.data(), chunk.size(), batch);
    size_t offset = 0;
    for (uint32_t len : batch.sizes) {
      if (len == 0) Fail("an empty line was reported");
      if (offset + len > batch.bytes.size()) Fail("line sizes run past the packed bytes");
      gotLines.emplace_back(batch.bytes, offset, len);
      offset += len;
    }
    if (offset != batch.bytes.size()) Fail("packed bytes longer than the sum of line sizes");
    uint64_t skipped = 0;
    for (const iottly::OversizeRun& run : batch.oversize) {
      if (run.count == 0) Fail("an empty oversize run");
      gotOversize.insert(gotOversize.end(), run.count, run.bytes);
      skipped += run.bytes * run.count;
    }
    if (skipped != batch.oversizeBytes) Fail("oversizeBytes is not the sum of the runs");
  }
  Reference(stream, max, want);
  if (gotLines != want.lines) Fail("lines differ from the reference split");
  if (gotOversize != want.oversize) Fail("oversize reports differ from the reference split");
  return 0;
}
