// Chat formatting: a conversation as the model was trained to see it. slm does not run Jinja;
// it recognises the common template families by their markers (like llama.cpp does) and writes
// their format itself. Every format is append-only: the text of a conversation is a prefix of
// the text of the conversation continued, so a session reuses its cache across turns.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace slm {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatFormat {
  kChatMl,  // <|im_start|>role … <|im_end|> (Qwen, SmolLM, many fine-tunes)
  kLlama3,  // <|start_header_id|>role<|end_header_id|> … <|eot_id|>
  kLlama2,  // [INST] <<SYS>> … <</SYS>> … [/INST] (Llama 2, Mistral)
  kGemma,   // <start_of_turn>user … <end_of_turn> (no system role: it joins the first user turn)
  kPhi3,    // <|user|> … <|end|>
  kPlain,   // "User: …\nAssistant: …" for models without a template (e.g. stories260K)
};

// The family of a Jinja chat template; kPlain for an empty or unknown one.
ChatFormat detect_chat_format(std::string_view jinja_template);
const char* chat_format_name(ChatFormat format);

// The conversation's text (without the BOS the tokenizer adds), ending with an opened assistant
// turn when open_assistant_turn. Throws InvalidArgumentError for an unknown role.
std::string format_chat(ChatFormat format, std::span<const ChatMessage> messages,
                        bool open_assistant_turn = true);

// Text that ends an assistant turn in this format (a stop string for generate).
std::string chat_turn_end(ChatFormat format);

}  // namespace slm
