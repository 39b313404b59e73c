// Locating ../shared test data. A test that needs it calls SLM_REQUIRE_DATA(path): when the data
// is missing the test is skipped with a visible message, or fails when SLM_REQUIRE_TEST_DATA=1
// (CI sets it, so missing data can never turn into a silent pass).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace slm::test {

// $SLM_TEST_DATA, or ../shared beside the repository.
std::filesystem::path data_root();
// data_root() / relative.
std::filesystem::path data_path(const std::string& relative);
bool data_required();

std::vector<float> read_f32(const std::filesystem::path& path);
std::vector<int32_t> read_ids(const std::filesystem::path& path);  // whitespace-separated ints
std::string read_text(const std::filesystem::path& path);

// NMSE = sum((a-b)^2) / sum(b^2) over one row.
double nmse(const float* a, const float* b, size_t n);

// A scratch directory unique to the running test and process, removed and recreated on each
// call; the process's scratch directories are removed when it exits.
std::filesystem::path temp_dir();

// The built `slm` binary run through the shell with ARGS, stdin from /dev/null.
struct CliResult {
  int code = -1;  // exit code (128 + signal when killed)
  std::string out;
  std::string err;
};
// The lines of a text, without their '\n'.
std::vector<std::string> split_lines(const std::string& text);

// Calling f throws E whose message names every needle.
template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    FAIL() << "expected an error mentioning '" << needles.front() << "'";
  } catch (const E& e) {
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

// A copy of zoo/hf/NAME (config.json and model.safetensors) in the test's temp_dir(), with the
// first `from` in its config.json replaced by `to` (a failed test when `from` is not there).
std::filesystem::path hf_zoo_copy(const std::string& name, const std::string& from = "",
                                  const std::string& to = "");

// Runs the slm CLI with `args`, stdin read from `stdin_path`.
CliResult run_slm(const std::vector<std::string>& args,
                  const std::string& stdin_path = "/dev/null");

}  // namespace slm::test

#define SLM_REQUIRE_DATA(path_expr)                                                  \
  do {                                                                               \
    if (!std::filesystem::exists(path_expr)) {                                       \
      if (::slm::test::data_required()) {                                            \
        FAIL() << "test data missing: " << (path_expr) << " (SLM_REQUIRE_TEST_DATA=1)"; \
      }                                                                              \
      GTEST_SKIP() << "test data missing: " << (path_expr)                           \
                   << " (set SLM_TEST_DATA to the shared data folder)";              \
    }                                                                                \
  } while (0)
