// Counts the binary's operator new calls while an AllocationCounter is alive (tests that assert
// a hot path allocates nothing). The replacement operator new lives in its own translation unit,
// allocation_counter.cpp, so the compiler never inlines it into a caller and mistakes its
// malloc/free pair for a mismatched new/free.
#pragma once

#include <cstddef>

namespace slm::test {

class AllocationCounter {
 public:
  AllocationCounter();   // resets the count and starts counting
  ~AllocationCounter();  // stops counting
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  size_t count() const;  // operator new calls since construction
};

}  // namespace slm::test
