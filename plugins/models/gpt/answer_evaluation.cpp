#include "answer_evaluation.hpp"

#include <algorithm>

#include "byte_tokenizer.hpp"

namespace lorafed::gpt {
namespace {

constexpr std::int64_t kMaxAnswerTokens = 8;

}  // namespace

std::vector<std::string> greedy_answers(const LoraGpt& model,
                                        const std::vector<WordProblem>& problems,
                                        std::int64_t max_new_tokens, std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> answers;
  const auto n = static_cast<std::int64_t>(problems.size());
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(begin + batch_size, n);
    std::vector<std::int64_t> lengths;
    std::int64_t longest = 0;
    for (std::int64_t i = begin; i < end; ++i) {
      lengths.push_back(
          static_cast<std::int64_t>(problems[static_cast<std::size_t>(i)].prompt.size()));
      longest = std::max(longest, lengths.back());
    }
    const std::int64_t room = std::min(longest + max_new_tokens, model.shape().context);
    // Right-padded: causal attention keeps padding from reaching the prompt.
    torch::Tensor tokens = torch::full({end - begin, room}, kEndOfText, torch::kLong);
    for (std::int64_t i = begin; i < end; ++i) {
      const auto prompt = encode_bytes(problems[static_cast<std::size_t>(i)].prompt);
      tokens[i - begin]
          .slice(0, 0, lengths[static_cast<std::size_t>(i - begin)])
          .copy_(torch::tensor(prompt, torch::kLong));
    }
    std::vector<std::vector<std::int64_t>> generated(static_cast<std::size_t>(end - begin));
    std::vector<bool> done(static_cast<std::size_t>(end - begin), false);
    for (std::int64_t step = 0; step < max_new_tokens; ++step) {
      const std::int64_t reach = *std::max_element(lengths.begin(), lengths.end());
      if (reach >= room) break;
      const torch::Tensor logits = model.forward(tokens.slice(1, 0, reach));
      const torch::Tensor last =
          logits.index({torch::arange(end - begin), torch::tensor(lengths) - 1});
      const torch::Tensor next = last.argmax(-1);
      bool all_done = true;
      for (std::size_t b = 0; b < done.size(); ++b) {
        if (done[b]) continue;
        const std::int64_t token = next[static_cast<std::int64_t>(b)].item<std::int64_t>();
        if (token == kEndOfText || token == '\n' || lengths[b] >= room) {
          done[b] = true;
          continue;
        }
        generated[b].push_back(token);
        tokens[static_cast<std::int64_t>(b)][lengths[b]] = token;
        ++lengths[b];
        all_done = false;
      }
      if (all_done) break;
    }
    for (const auto& answer : generated) answers.push_back(decode_bytes(answer));
  }
  return answers;
}

EvalReport evaluate_answers(const LoraGpt& model, const std::vector<WordProblem>& problems,
                            const data::Examples& sequences, std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  EvalReport report;
  report.num_examples = static_cast<std::int64_t>(problems.size());
  if (problems.empty()) return report;
  double loss_sum = 0;
  std::int64_t tokens = 0;
  const std::int64_t n = sequences.inputs.size(0);
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(begin + batch_size, n);
    const torch::Tensor logits = model.forward(sequences.inputs.slice(0, begin, end));
    const torch::Tensor labels = sequences.labels.slice(0, begin, end);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits.transpose(1, 2), labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    tokens += labels.ge(0).sum().item<std::int64_t>();
  }
  report.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(tokens, 1));

  const auto answers = greedy_answers(model, problems, kMaxAnswerTokens, batch_size);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) correct += answers[i] == problems[i].answer;
  report.metrics["exact_match"] =
      static_cast<double>(correct) / static_cast<double>(problems.size());
  return report;
}

}  // namespace lorafed::gpt
