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

}  // namespace slm
