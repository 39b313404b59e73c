// A whole file in memory, read-only: mmap'ed (fast start, pages shared between processes) or
// read into anonymous memory backed by transparent huge pages where the kernel allows
// (madvise(MADV_HUGEPAGE), 2 MiB aligned): no page faults and few TLB misses while the weights
// stream through every token, which made decode faster and steadier (DESIGN.md "Performance
// model"). Movable, not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace slm {

class MappedFile {
 public:
  // Throws IoError naming the path when the file cannot be opened, read or mapped.
  static MappedFile open(const std::string& path, bool use_mmap = true);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mapped() const { return mapped_; }
  // Runs `edit` on the bytes made writable, then read-only again: the buffer read into memory
  // can be rewritten in place (weights repacked at load). A mapping of the file gets an empty
  // span (its pages belong to the file), and so does a buffer the kernel will not unprotect.
  void edit_in_place(const std::function<void(std::span<uint8_t>)>& edit);

 private:
  void release() noexcept;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;     // a mapping of the file itself
  size_t reserved_ = 0;     // bytes mapped (the anonymous buffer is rounded up to 2 MiB)
};

}  // namespace slm
