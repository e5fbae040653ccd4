#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace iottly {

// TEST-ONLY fault injection. IOTTLY_SDK_TEST_FAULT is read once, when the addon is loaded, and makes
// one std::bad_alloc happen at a chosen place, once per process, so that test/native-edge.test.mjs
// can check what follows an exception that no real agent can provoke on demand (an allocation
// failing on the I/O thread or while a delivery is built). Applications must not set it.
//   io       the I/O thread throws after reading its first inbound frames
//   deliver  the delivery that carries the 'stopped' event throws before calling JavaScript
enum class TestFault { kNone, kIo, kDeliver };

inline TestFault ParseTestFault(const char* v) {
  if (v == nullptr) return TestFault::kNone;
  if (std::strcmp(v, "io") == 0) return TestFault::kIo;
  if (std::strcmp(v, "deliver") == 0) return TestFault::kDeliver;
  return TestFault::kNone;
}

inline const TestFault kTestFault = ParseTestFault(std::getenv("IOTTLY_SDK_TEST_FAULT"));

// True the first time `fault` is the configured one: the caller then throws.
inline bool TestFaultFires(TestFault fault) {
  static std::atomic<bool> fired{false};
  return kTestFault == fault && !fired.exchange(true);
}

}  // namespace iottly
