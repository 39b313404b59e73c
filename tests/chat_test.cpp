// Chat formats: each family's text for a conversation, recognised from real chat templates, and
// append-only (a conversation's text is a prefix of its continuation's, so caches are reused).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slm/slm.h"
#include "tests/test_data.h"

namespace slm {
namespace {

const std::vector<ChatMessage> kTalk = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Why?"}};

TEST(ChatFormat, EachFamilysText) {
  EXPECT_EQ(format_chat(ChatFormat::kChatMl, kTalk),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chat(ChatFormat::kLlama3, kTalk),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(format_chat(ChatFormat::kLlama2, kTalk),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Why? [/INST]");
  EXPECT_EQ(format_chat(ChatFormat::kGemma, kTalk),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello."
            "<end_of_turn>\n<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(format_chat(ChatFormat::kPhi3, kTalk),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nWhy?<|end|>\n<|assistant|>\n");
  EXPECT_EQ(format_chat(ChatFormat::kPlain, kTalk),
            "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Why?\nAssistant:");
  EXPECT_THROW(format_chat(ChatFormat::kChatMl, std::vector<ChatMessage>{{"tool", "x"}}),
               InvalidArgumentError);
}

TEST(ChatFormat, TextOfAConversationPrefixesItsContinuation) {
  for (ChatFormat f : {ChatFormat::kChatMl, ChatFormat::kLlama3, ChatFormat::kLlama2,
                       ChatFormat::kGemma, ChatFormat::kPhi3, ChatFormat::kPlain}) {
    const std::vector<ChatMessage> first(kTalk.begin(), kTalk.begin() + 2);
    const std::string asked = format_chat(f, first);           // the assistant's turn is open
    const std::string answered = format_chat(f, kTalk, true);  // ... and answered, and more
    EXPECT_EQ(answered.substr(0, asked.size()), asked) << chat_format_name(f);
  }
}

TEST(ChatFormat, RecognisesRealTemplates) {
  const std::pair<const char*, ChatFormat> cases[] = {{"llama3", ChatFormat::kLlama3},
                                                      {"qwen3", ChatFormat::kChatMl},
                                                      {"gemma3", ChatFormat::kGemma}};
  for (const auto& [name, want] : cases) {
    const auto dir = test::data_path(std::string("tokenizer/hf/") + name);
    SLM_REQUIRE_DATA(dir);
    const std::string config = test::read_text(dir / "tokenizer_config.json");
    // The template is a JSON string: its markers survive the escaping.
    EXPECT_EQ(detect_chat_format(config), want) << name;
  }
  EXPECT_EQ(detect_chat_format("{% for m in messages %}[INST] {{ m.content }} [/INST]"),
            ChatFormat::kLlama2);  // Llama 2's tokenizer_config.json here carries no template
  EXPECT_EQ(detect_chat_format(""), ChatFormat::kPlain);
}

}  // namespace
}  // namespace slm
