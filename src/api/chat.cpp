#include "slm/chat.h"

#include <fmt/format.h>

#include <utility>

#include "slm/error.h"

namespace slm {
namespace {

void check_role(const ChatMessage& m) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant") {
    throw InvalidArgumentError(
        fmt::format("chat role '{}' is not one of system, user, assistant", m.role));
  }
}

}  // namespace

ChatFormat detect_chat_format(std::string_view t) {
  const auto has = [&](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
  if (has("<|im_start|>")) return ChatFormat::kChatMl;
  if (has("<|start_header_id|>")) return ChatFormat::kLlama3;
  if (has("<start_of_turn>")) return ChatFormat::kGemma;
  if (has("<|user|>") && has("<|end|>")) return ChatFormat::kPhi3;
  if (has("[INST]")) return ChatFormat::kLlama2;
  return ChatFormat::kPlain;
}

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::kChatMl: return "chatml";
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kLlama2: return "llama2";
    case ChatFormat::kGemma: return "gemma";
    case ChatFormat::kPhi3: return "phi3";
    case ChatFormat::kPlain: return "plain";
  }
  return "plain";
}

std::string chat_turn_end(ChatFormat format) {
  switch (format) {
    case ChatFormat::kChatMl: return "<|im_end|>";
    case ChatFormat::kLlama3: return "<|eot_id|>";
    case ChatFormat::kLlama2: return "</s>";
    case ChatFormat::kGemma: return "<end_of_turn>";
    case ChatFormat::kPhi3: return "<|end|>";
    case ChatFormat::kPlain: return "\nUser:";
  }
  return "";
}

std::string format_chat(ChatFormat format, std::span<const ChatMessage> messages,
                        bool open_assistant_turn) {
  for (const ChatMessage& m : messages) check_role(m);
  std::string out;
  switch (format) {
    case ChatFormat::kChatMl:
      for (const ChatMessage& m : messages) {
        out += fmt::format("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
      }
      if (open_assistant_turn) out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::kLlama3:
      for (const ChatMessage& m : messages) {
        out += fmt::format("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", m.role,
                           m.content);
      }
      if (open_assistant_turn) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFormat::kPhi3:
      for (const ChatMessage& m : messages) {
        out += fmt::format("<|{}|>\n{}<|end|>\n", m.role, m.content);
      }
      if (open_assistant_turn) out += "<|assistant|>\n";
      break;
    case ChatFormat::kGemma: {
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system += m.content + "\n\n";
          continue;
        }
        const char* role = m.role == "assistant" ? "model" : "user";
        out += fmt::format("<start_of_turn>{}\n{}{}<end_of_turn>\n", role,
                           m.role == "user" ? std::exchange(system, {}) : "", m.content);
      }
      if (open_assistant_turn) out += "<start_of_turn>model\n";
      break;
    }
    case ChatFormat::kLlama2: {
      // [INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST] …
      std::string system;
      bool first_user = true;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system = "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
        } else if (m.role == "user") {
          out += fmt::format("{}[INST] {}{} [/INST]", first_user ? "" : "<s>",
                             std::exchange(system, {}), m.content);
          first_user = false;
        } else {
          out += fmt::format(" {} </s>", m.content);
        }
      }
      break;  // the assistant's turn is open after [/INST]
    }
    case ChatFormat::kPlain:
      for (const ChatMessage& m : messages) {
        const char* who = m.role == "system" ? "System" : m.role == "user" ? "User" : "Assistant";
        out += fmt::format("{}: {}\n", who, m.content);
      }
      if (open_assistant_turn) out += "Assistant:";
      break;
  }
  return out;
}

}  // namespace slm
