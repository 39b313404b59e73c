#include "src/model/hf_chat.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <filesystem>
#include <limits>
#include <optional>

#include "slm/error.h"

namespace slm {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// The top-level object of a JSON file; nullopt when the file does not exist.
std::optional<object> load_object(const std::string& path, simdjson::dom::parser& parser,
                                  simdjson::padded_string& text) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  if (simdjson::padded_string::load(path).get(text) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read", path));
  }
  element root;
  if (const auto err = parser.parse(text).get(root); err != simdjson::SUCCESS) {
    throw FormatError(fmt::format("{}: invalid JSON: {}", path, simdjson::error_message(err)));
  }
  object o;
  if (root.get_object().get(o) != simdjson::SUCCESS) {
    throw FormatError(fmt::format("{}: not a JSON object", path));
  }
  return o;
}

std::optional<element> field(const object& o, std::string_view key) {
  element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

int32_t token_id(const std::string& path, std::string_view key, element v) {
  int64_t id = 0;
  if (v.get_int64().get(id) != simdjson::SUCCESS || id < 0 ||
      id > std::numeric_limits<int32_t>::max()) {
    throw FormatError(fmt::format("{}: '{}' is not a token id or a list of them", path, key));
  }
  return static_cast<int32_t>(id);
}

}  // namespace

HfGenerationConfig read_generation_config(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::padded_string text;
  HfGenerationConfig out;
  const std::optional<object> root = load_object(path, parser, text);
  if (!root) return out;
  if (const auto e = field(*root, "eos_token_id")) {
    if (array list; e->get_array().get(list) == simdjson::SUCCESS) {
      for (element v : list) out.eos_ids.push_back(token_id(path, "eos_token_id", v));
    } else {
      out.eos_ids.push_back(token_id(path, "eos_token_id", *e));
    }
  }
  if (const auto e = field(*root, "bos_token_id")) out.bos_id = token_id(path, "bos_token_id", *e);
  return out;
}

// On demand: tokenizer_config.json files hold numbers no JSON library takes as a number (Llama
// 2's model_max_length is 1e30 written as an integer), and only chat_template is read.
std::string read_chat_template(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text) != simdjson::SUCCESS) {
    throw IoError(fmt::format("{}: cannot read", path));
  }
  const auto invalid = [&](simdjson::error_code err) {
    return FormatError(fmt::format("{}: invalid JSON: {}", path, simdjson::error_message(err)));
  };
  const auto malformed = [&] {
    return FormatError(fmt::format(
        "{}: 'chat_template' is neither a string nor a list of {{\"name\", \"template\"}} objects",
        path));
  };
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object root;
  if (const auto err = parser.iterate(text).get(doc); err) throw invalid(err);
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    throw FormatError(fmt::format("{}: not a JSON object", path));
  }
  simdjson::ondemand::value value;
  if (const auto err = root.find_field_unordered("chat_template").get(value); err) {
    if (err == simdjson::NO_SUCH_FIELD) return {};
    throw invalid(err);
  }
  simdjson::ondemand::json_type type;
  if (const auto err = value.type().get(type); err) throw invalid(err);
  if (type == simdjson::ondemand::json_type::null) return {};
  std::string_view s;
  if (type == simdjson::ondemand::json_type::string) {
    if (const auto err = value.get_string().get(s); err) throw invalid(err);
    return std::string(s);
  }
  // transformers' list form: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
  simdjson::ondemand::array list;
  if (type != simdjson::ondemand::json_type::array || value.get_array().get(list))
    throw malformed();
  std::optional<std::string> first, named_default;
  for (auto item : list) {
    simdjson::ondemand::object entry;
    std::string_view name, templ;
    if (item.get_object().get(entry) || entry.find_field_unordered("name").get_string().get(name) ||
        entry.find_field_unordered("template").get_string().get(templ)) {
      throw malformed();
    }
    if (!first) first = std::string(templ);
    // `name` may point into the parser's buffer, reused by the next string: compare it now.
    if (!named_default && name == "default") named_default = std::string(templ);
  }
  return named_default.value_or(first.value_or(""));
}

}  // namespace slm
