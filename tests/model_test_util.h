// Helpers shared by the model-loading tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "slm/slm.h"
#include "tests/test_data.h"

namespace slm::test {

// Loading `path` (a GGUF file or a Hugging Face directory) throws E whose message names every
// needle.
template <class E>
void expect_load_error(const std::filesystem::path& path, const std::vector<std::string>& needles) {
  expect_error<E>([&] { Model::load(path.string()); }, needles);
}

}  // namespace slm::test
