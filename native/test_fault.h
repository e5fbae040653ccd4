#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace iottly {

// TEST-ONLY fault injection. IOTTLY_SDK_TEST_FAULT is read once, when the addon is loaded. It makes
// one std::bad_alloc happen at a chosen place, once per process, so that test/native-edge.test.mjs
// can check what follows an exception that no real agent can provoke on demand (an allocation
// failing on the I/O thread or while a delivery is built), or it holds back a race that a test
// needs to lose every time. Applications must not set it.
//   io           the I/O thread throws after reading its first inbound frames
//   deliver      the delivery that carries the 'stopped' event throws before calling JavaScript
//   hold-writes  once the hello is out, the I/O thread writes nothing more until the environment
//                goes away (what a busy machine does to a process that exits right after send())
enum class TestFault { kNone, kIo, kDeliver, kHoldWrites };

inline TestFault ParseTestFault(const char* v) {
  if (v == nullptr) return TestFault::kNone;
  if (std::strcmp(v, "io") == 0) return TestFault::kIo;
  if (std::strcmp(v, "deliver") == 0) return TestFault::kDeliver;
  if (std::strcmp(v, "hold-writes") == 0) return TestFault::kHoldWrites;
  return TestFault::kNone;
}

inline const TestFault kTestFault = ParseTestFault(std::getenv("IOTTLY_SDK_TEST_FAULT"));

// True the first time `fault` is the configured one: the caller then throws.
inline bool TestFaultFires(TestFault fault) {
  static std::atomic<bool> fired{false};
  return kTestFault == fault && !fired.exchange(true);
}

}  // namespace iottly
