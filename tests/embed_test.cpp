// embed(): the pooled final hidden state. Checked against the model itself: the last token's
// unnormalised embedding times the output matrix gives that token's logits, and mean pooling is
// the mean of the prefixes' last-token embeddings (a causal model's hidden state at position k
// depends only on tokens 0..k).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "slm/slm.h"
#include "src/api/model_impl.h"
#include "tests/test_data.h"

namespace slm {
namespace {

using test::data_path;

const std::vector<int32_t> kTokens = {1, 403, 407, 261, 378, 432, 383};

TEST(Embed, LastTokenStateGivesTheLogits) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const Matrix& out = model.impl()->weights.output;
  ASSERT_EQ(out.type, DType::kF32);
  const std::vector<float> h =
      embed(model, kTokens, {.pooling = Pooling::kLast, .normalize = false, .threads = 1});
  ASSERT_EQ(h.size(), size_t(out.cols));
  Session session(model, {.threads = 1, .kv_type = KvType::kF32});
  const auto logits = session.eval(kTokens);
  const auto* w = static_cast<const float*>(out.data);
  for (int64_t j = 0; j < out.rows; ++j) {
    double dot = 0;
    for (int64_t i = 0; i < out.cols; ++i) dot += double(w[j * out.cols + i]) * h[size_t(i)];
    EXPECT_NEAR(dot, logits[size_t(j)], 1e-4 * (1 + std::fabs(dot))) << "logit " << j;
  }
}

TEST(Embed, MeanPoolingAndNormalisation) {
  SLM_REQUIRE_DATA(data_path("models/stories260K/stories260K.gguf"));
  const Model model = Model::load(data_path("models/stories260K/stories260K.gguf").string());
  const std::vector<float> mean =
      embed(model, kTokens, {.pooling = Pooling::kMean, .normalize = false, .threads = 1});
  std::vector<double> want(mean.size(), 0.0);
  for (size_t k = 1; k <= kTokens.size(); ++k) {
    const std::vector<float> last = embed(model, std::span(kTokens).first(k),
                                          {.pooling = Pooling::kLast, .normalize = false});
    for (size_t i = 0; i < want.size(); ++i) want[i] += last[i] / double(kTokens.size());
  }
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(mean[i], want[i], 1e-4) << i;

  const std::vector<float> unit = embed(model, kTokens);  // the model's pooling (mean), normalised
  double norm = 0, dot = 0;
  for (size_t i = 0; i < unit.size(); ++i) {
    norm += double(unit[i]) * unit[i];
    dot += double(unit[i]) * mean[i];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_GT(dot, 0.0);  // the same direction as the unnormalised mean
  // The text overload tokenizes like the model does.
  EXPECT_EQ(embed(model, std::string_view("Once upon a time")),
            embed(model, model.tokenizer().encode("Once upon a time")));
}

TEST(Embed, BadInputIsAClearError) {
  const Model model = Model::load(SLM_BUNDLED_MODEL);
  EXPECT_THROW(embed(model, std::vector<int32_t>{}), InvalidArgumentError);
  EXPECT_THROW(embed(model, std::vector<int32_t>{1, 100000}), InvalidArgumentError);
  EXPECT_THROW(embed(model, std::vector<int32_t>(size_t(model.info().context_length) + 1, 5)),
               InvalidArgumentError);
}

}  // namespace
}  // namespace slm
