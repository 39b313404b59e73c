#include "src/format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "slm/error.h"

namespace slm {
namespace {

[[noreturn]] void throw_io(const std::string& path, const char* what, int err) {
  throw IoError(path + ": " + what + ": " + std::strerror(err));
}

// Closes the descriptor on every path out of open(), including exceptions.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path, bool use_mmap) {
  FdGuard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) throw_io(path, "cannot open", errno);

  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw_io(path, "cannot stat", errno);
  if (S_ISDIR(st.st_mode)) throw IoError(path + ": is a directory, not a file");
  // Pipes and devices have no meaningful size to map or read up front.
  if (!S_ISREG(st.st_mode)) throw IoError(path + ": not a regular file");
  if (st.st_size < 0 ||
      static_cast<unsigned long long>(st.st_size) > std::numeric_limits<size_t>::max()) {
    throw IoError(path + ": file too large to map");
  }

  MappedFile file;
  file.path_ = path;
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) return file;  // mmap of length 0 is EINVAL; an empty view is the right answer

  if (use_mmap) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (p == MAP_FAILED) throw_io(path, "cannot mmap", errno);
    file.data_ = static_cast<const uint8_t*>(p);
    file.size_ = size;
    file.mapped_ = true;
    return file;
  }

  // Anonymous memory, 2 MiB aligned so the kernel can back it with huge pages. Reading into it
  // faults every page in now, at load, instead of during the first tokens.
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t reserved = (size + kHugePage - 1) / kHugePage * kHugePage;
  void* p = ::mmap(nullptr, reserved + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw IoError(path + ": cannot allocate " + std::to_string(size) + " bytes: " +
                  std::strerror(errno));
  }
  // Trim the over-allocation so the buffer starts on a 2 MiB boundary.
  auto* raw = static_cast<uint8_t*>(p);
  const auto addr = reinterpret_cast<uintptr_t>(raw);
  const size_t head = (kHugePage - addr % kHugePage) % kHugePage;
  if (head > 0) ::munmap(raw, head);
  ::munmap(raw + head + reserved, kHugePage - head);
  auto* buf = raw + head;
  ::madvise(buf, reserved, MADV_HUGEPAGE);  // advice only: without THP it is plain memory
  // Owned by `file` from here on, so an exception below frees it.
  file.data_ = buf;
  file.size_ = size;
  file.reserved_ = reserved;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd.fd, buf + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(path, "cannot read", errno);
    }
    if (n == 0) {
      throw IoError(path + ": file shrank while reading (" + std::to_string(done) + " of " +
                    std::to_string(size) + " bytes)");
    }
    done += static_cast<size_t>(n);
  }
  ::mprotect(buf, reserved, PROT_READ);  // read-only like the mapping: a stray write faults
  return file;
}

void MappedFile::edit_in_place(const std::function<void(std::span<uint8_t>)>& edit) {
  if (mapped_ || data_ == nullptr) {
    edit({});
    return;
  }
  auto* buf = const_cast<uint8_t*>(data_);  // ours: the anonymous buffer open() read into
  if (::mprotect(buf, reserved_, PROT_READ | PROT_WRITE) != 0) {
    edit({});  // still read-only: nothing to rewrite (an edit is an optimisation)
    return;
  }
  try {
    edit({buf, size_});
  } catch (...) {
    ::mprotect(buf, reserved_, PROT_READ);
    throw;
  }
  ::mprotect(buf, reserved_, PROT_READ);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      reserved_(std::exchange(other.reserved_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    reserved_ = std::exchange(other.reserved_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (data_ != nullptr) {
    ::munmap(const_cast<uint8_t*>(data_), mapped_ ? size_ : reserved_);
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  reserved_ = 0;
}

}  // namespace slm
