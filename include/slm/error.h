// Errors thrown by slm. Every message names the file, metadata key or tensor at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace slm {

enum class ErrorKind {
  kFormat,           // a file is malformed or truncated
  kUnsupported,      // valid input that slm does not handle (architecture, tensor type, ...)
  kInvalidArgument,  // a caller's value is out of range (token id, context size, option)
  kIo,               // the operating system refused (open, mmap, write)
  kOutOfMemory,      // a memory budget (the KV cache pool's) is used up
  kEvicted,          // a session's cached sequence was evicted from a shared KV pool
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

class FormatError : public Error {
 public:
  explicit FormatError(const std::string& message) : Error(ErrorKind::kFormat, message) {}
};

class UnsupportedError : public Error {
 public:
  explicit UnsupportedError(const std::string& message)
      : Error(ErrorKind::kUnsupported, message) {}
};

class InvalidArgumentError : public Error {
 public:
  explicit InvalidArgumentError(const std::string& message)
      : Error(ErrorKind::kInvalidArgument, message) {}
};

class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(ErrorKind::kIo, message) {}
};

class OutOfMemoryError : public Error {
 public:
  explicit OutOfMemoryError(const std::string& message)
      : Error(ErrorKind::kOutOfMemory, message) {}
};

// The session's KV blocks were taken by another session of an evicting KvPool: its sequence is
// lost and it is now empty (position 0); evaluate the whole sequence again (Session::prompt
// reuses whatever of it is still cached).
class EvictedError : public Error {
 public:
  explicit EvictedError(const std::string& message) : Error(ErrorKind::kEvicted, message) {}
};

}  // namespace slm
