// glibc's allocator serves blocks above 128 KiB (a batch of activations, an im2col buffer) with
// fresh mmap() calls and returns them to the kernel on free, so every training step pays page
// faults and the kernel's zeroing for buffers it had a moment ago: measured on the DCGAN step,
// 25% of the time in page faults and memset. Keeping such blocks in the heap (mmap only above
// 64 MiB, trim only above 256 MiB) makes them reused from step to step.
#include <malloc.h>

#include "stage/runtime.hpp"

namespace loom {

void keep_freed_memory_for_reuse() {
  static bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return true;
  }();
  (void)done;
}

}  // namespace loom
