#pragma once

#include <cstdint>

#include "surface.h"

namespace iottly {

// The running totals of IOTTLY_COUNTER_FIELDS (surface.h): its KEPT fields. The LIVE ones (what is
// queued) are measured when counters() is called.
struct Counters {
#define IOTTLY_COUNTER_MEMBER(name) uint64_t name = 0;
#define IOTTLY_COUNTER_NONE(name)
  IOTTLY_COUNTER_FIELDS(IOTTLY_COUNTER_MEMBER, IOTTLY_COUNTER_NONE)
#undef IOTTLY_COUNTER_MEMBER
#undef IOTTLY_COUNTER_NONE
};

}  // namespace iottly
