#include "answer_evaluation.hpp"

#include <algorithm>

namespace lorafed::gpt {
std::vector<std::string> greedy_answers(const LoraGpt& model,
                                        const std::vector<WordProblem>& problems,
                                        const SequenceEncoder& encoder, std::int64_t max_new_tokens,
                                        std::int64_t batch_size, bool first_line) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> answers;
  const auto n = static_cast<std::int64_t>(problems.size());
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(begin + batch_size, n);
    std::vector<std::vector<std::int64_t>> prompts;
    std::vector<std::int64_t> lengths;
    std::int64_t longest = 0;
    for (std::int64_t i = begin; i < end; ++i) {
      std::vector<std::int64_t> prompt = encoder.prefix;
      const auto tokens = encoder.encode(problems[static_cast<std::size_t>(i)].prompt);
      prompt.insert(prompt.end(), tokens.begin(), tokens.end());
      lengths.push_back(static_cast<std::int64_t>(prompt.size()));
      longest = std::max(longest, lengths.back());
      prompts.push_back(std::move(prompt));
    }
    const std::int64_t room = std::min(longest + max_new_tokens, model.shape().context);
    // Right-padded: causal attention keeps padding from reaching the prompt.
    torch::Tensor tokens = torch::full({end - begin, room}, encoder.end, torch::kLong);
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      const auto length = std::min(lengths[b], room);
      tokens[static_cast<std::int64_t>(b)]
          .slice(0, 0, length)
          .copy_(torch::tensor(prompts[b], torch::kLong).slice(0, 0, length));
    }
    std::vector<std::vector<std::int64_t>> generated(prompts.size());
    std::vector<std::string> texts(prompts.size());
    std::vector<bool> done(prompts.size(), false);
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
        if (token == encoder.end || lengths[b] >= room) {
          done[b] = true;
          continue;
        }
        generated[b].push_back(token);
        texts[b] = encoder.decode(generated[b]);
        if (first_line && texts[b].find('\n') != std::string::npos) {
          done[b] = true;
          continue;
        }
        tokens[static_cast<std::int64_t>(b)][lengths[b]] = token;
        ++lengths[b];
        all_done = false;
      }
      if (all_done) break;
    }
    for (const std::string& text : texts)
      answers.push_back(first_line ? text.substr(0, text.find('\n')) : text);
  }
  return answers;
}

double answer_loss(const std::function<torch::Tensor(const torch::Tensor&)>& logits,
                   const data::Examples& sequences, std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  double loss_sum = 0;
  std::int64_t tokens = 0;
  const std::int64_t n = sequences.inputs.size(0);
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(begin + batch_size, n);
    const torch::Tensor labels = sequences.labels.slice(0, begin, end);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits(sequences.inputs.slice(0, begin, end)).transpose(1, 2), labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    tokens += labels.ge(0).sum().item<std::int64_t>();
  }
  return loss_sum / static_cast<double>(std::max<std::int64_t>(tokens, 1));
}

double exact_match(const std::vector<WordProblem>& problems,
                   const std::vector<std::string>& answers) {
  if (problems.empty()) return 0;
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const std::string& answer = answers.at(i);
    const std::size_t first = answer.find_first_not_of(" \t\n\r");
    const std::size_t last = answer.find_last_not_of(" \t\n\r");
    const std::string trimmed =
        first == std::string::npos ? std::string() : answer.substr(first, last - first + 1);
    correct += trimmed == problems[i].answer;
  }
  return static_cast<double>(correct) / static_cast<double>(problems.size());
}

}  // namespace lorafed::gpt
