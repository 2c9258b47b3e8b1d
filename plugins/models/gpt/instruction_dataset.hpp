#pragma once
// An instruction dataset read from local files (Dolly, GSM8K, Alpaca,
// CodeAlpaca: plugins/models/text/README.md) as the prompts and responses
// the language-model backends train on: each record through the prompt
// template, its category as its class for the non-IID splits.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "word_problems.hpp"

namespace lorafed::gpt {

struct DatasetFiles {
  std::string train;           // [model] dataset
  std::string test;            // [model] test_dataset; empty: held out of train
  std::string format;          // dolly, gsm8k, alpaca or codealpaca
  double test_fraction = 0.1;  // held out when there is no test file
  std::string prompt_template = "alpaca";
  std::uint64_t seed = 0;  // which records are held out
};

// Every process's view of the dataset: train and test prompts with their
// responses, type = the index of the record's category in `categories`
// (sorted names; one class named after the format when records have none).
struct DatasetPools {
  std::vector<WordProblem> train;
  std::vector<WordProblem> test;
  std::vector<std::string> categories;
};

// Read once per process while someone holds the result (clients in one
// process share it). Throws FormatError for a malformed file (naming file
// and line) and ConfigError for a bad option.
std::shared_ptr<const DatasetPools> load_dataset_pools(const DatasetFiles& files);

}  // namespace lorafed::gpt
