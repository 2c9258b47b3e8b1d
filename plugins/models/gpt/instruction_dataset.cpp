#include "instruction_dataset.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "instruction_records.hpp"
#include "lorafed/error.hpp"
#include "lorafed/seed.hpp"
#include "prompt_template.hpp"

namespace lorafed::gpt {
namespace {

std::shared_ptr<const DatasetPools> read_pools(const DatasetFiles& files) {
  const text::InstructionFormat format = text::parse_instruction_format(files.format);
  const text::PromptTemplate prompt = text::PromptTemplate::parse(files.prompt_template);
  std::vector<text::InstructionRecord> train = text::read_instruction_records(files.train, format);
  std::vector<text::InstructionRecord> test;
  if (!files.test.empty()) {
    test = text::read_instruction_records(files.test, format);
  } else {
    if (!(files.test_fraction > 0 && files.test_fraction < 1))
      throw ConfigError("test_fraction must lie strictly between 0 and 1");
    const auto held = static_cast<std::size_t>(
        std::max<double>(1, std::round(files.test_fraction * static_cast<double>(train.size()))));
    if (held >= train.size()) {
      throw ConfigError(
          fmt::format("{} holds {} records: too few to hold {} out for testing; "
                      "give test_dataset or a smaller test_fraction",
                      files.train, train.size(), held));
    }
    std::vector<std::size_t> order(train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(derive_seed(files.seed, {0x484c44 /* HLD */}));
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<bool> is_test(train.size(), false);
    for (std::size_t i = 0; i < held; ++i) is_test[order[i]] = true;
    std::vector<text::InstructionRecord> kept;
    for (std::size_t i = 0; i < train.size(); ++i)
      (is_test[i] ? test : kept).push_back(std::move(train[i]));
    train = std::move(kept);
  }

  auto pools = std::make_shared<DatasetPools>();
  for (const auto* records : {&train, &test}) {
    for (const auto& record : *records) pools->categories.push_back(record.category);
  }
  std::sort(pools->categories.begin(), pools->categories.end());
  pools->categories.erase(std::unique(pools->categories.begin(), pools->categories.end()),
                          pools->categories.end());
  if (pools->categories.size() == 1 && pools->categories.front().empty())
    pools->categories.front() = files.format;
  const auto class_of = [&](const text::InstructionRecord& record) {
    if (record.category.empty()) return std::int64_t{0};
    return static_cast<std::int64_t>(
        std::lower_bound(pools->categories.begin(), pools->categories.end(), record.category) -
        pools->categories.begin());
  };
  for (const auto& record : train)
    pools->train.push_back({prompt.render(record), record.response, class_of(record)});
  for (const auto& record : test)
    pools->test.push_back({prompt.render(record), record.response, class_of(record)});
  return pools;
}

}  // namespace

std::shared_ptr<const DatasetPools> load_dataset_pools(const DatasetFiles& files) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const DatasetPools>> cache;
  const std::string key =
      fmt::format("{}\n{}\n{}\n{}\n{}\n{}", files.train, files.test, files.format,
                  files.test_fraction, files.prompt_template, files.seed);
  std::lock_guard lock(mutex);
  if (auto cached = cache[key].lock()) return cached;
  auto pools = read_pools(files);
  cache[key] = pools;
  return pools;
}

}  // namespace lorafed::gpt
