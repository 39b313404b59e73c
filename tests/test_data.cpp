#include "tests/test_data.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace slm::test {

std::filesystem::path data_root() {
  if (const char* env = std::getenv("SLM_TEST_DATA"); env && *env) return env;
  return SLM_DEFAULT_TEST_DATA;
}

std::filesystem::path data_path(const std::string& relative) { return data_root() / relative; }

bool data_required() {
  const char* env = std::getenv("SLM_REQUIRE_TEST_DATA");
  return env && std::string(env) == "1";
}

std::vector<float> read_f32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<float> out(bytes / sizeof(float));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
  return out;
}

std::vector<int32_t> read_ids(const std::filesystem::path& path) {
  std::istringstream in(read_text(path));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double nmse(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  return den > 0 ? num / den : num;
}

std::filesystem::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "slm";
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  // Per process too, since runs from several checkouts may run the same test at once; removed
  // when the process exits.
  struct ProcessDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / "slm_tests" /
                                 ("pid_" + std::to_string(getpid()));
    ~ProcessDir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const ProcessDir process_dir;
  auto dir = process_dir.path / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}
}  // namespace

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::filesystem::path hf_zoo_copy(const std::string& name, const std::string& from,
                                  const std::string& to) {
  namespace fs = std::filesystem;
  const fs::path dir = temp_dir() / name, src = data_path("zoo/hf/" + name);
  fs::create_directories(dir);
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(src / file, dir / file, fs::copy_options::overwrite_existing);
  }
  if (!from.empty()) {
    std::string text = read_text(dir / "config.json");
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    std::ofstream(dir / "config.json") << text;
  }
  return dir;
}

CliResult run_slm(const std::vector<std::string>& args, const std::string& stdin_path) {
  // Captured per process, apart from temp_dir() (which a test may have filled with inputs).
  const auto dir = std::filesystem::temp_directory_path() / "slm_tests" /
                   ("cli_capture_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto out = dir / "stdout", err = dir / "stderr";
  std::string command = shell_quote(SLM_CLI_PATH);
  for (const std::string& a : args) command.append(" ").append(shell_quote(a));
  command.append(" >").append(shell_quote(out.string()));
  command.append(" 2>").append(shell_quote(err.string())).append(" <").append(shell_quote(stdin_path));
  const int status = std::system(command.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

}  // namespace slm::test
