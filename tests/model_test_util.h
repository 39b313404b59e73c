// Helpers shared by the model-loading tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "slm/slm.h"

namespace slm::test {

// Loading `path` (a GGUF file or a Hugging Face directory) throws E whose message names every
// needle.
template <class E>
void expect_load_error(const std::filesystem::path& path, const std::vector<std::string>& needles) {
  try {
    Model::load(path.string());
    FAIL() << "expected an error mentioning '" << needles.front() << "'";
  } catch (const E& e) {
    for (const std::string& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

}  // namespace slm::test
