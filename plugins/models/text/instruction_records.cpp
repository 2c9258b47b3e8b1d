#include "instruction_records.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string_view>

#include "final_number.hpp"
#include "lorafed/error.hpp"

namespace lorafed::text {
namespace {

// 1-based line of byte `offset` in `text`.
std::int64_t line_of(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
}

// The byte offset of each element of the top-level JSON array that starts
// at `text[open]` == '['. `text` has already parsed as JSON, so strings are
// closed and brackets balanced.
std::vector<std::size_t> array_element_offsets(std::string_view text, std::size_t open) {
  std::vector<std::size_t> offsets;
  int depth = 0;
  bool in_string = false;
  bool expecting = false;  // inside the array, before an element
  for (std::size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (depth == 1 && expecting && c != ']') {
      offsets.push_back(i);
      expecting = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth == 1) expecting = true;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) break;
    } else if (c == ',' && depth == 1) {
      expecting = true;
    }
  }
  return offsets;
}

class RecordReader {
 public:
  RecordReader(const std::filesystem::path& path, InstructionFormat format)
      : path_(path), format_(format) {}

  [[noreturn]] void fail(std::int64_t line, const std::string& problem) const {
    throw FormatError(path_.string() + ":" + std::to_string(line) + ": " + problem);
  }

  InstructionRecord read(const nlohmann::json& value, std::int64_t line) const {
    if (!value.is_object()) {
      fail(line, std::string("expected a JSON object, found ") + value.type_name());
    }
    InstructionRecord record;
    record.source = path_.string();
    record.line = line;
    switch (format_) {
      case InstructionFormat::kDolly:
        record.instruction = required(value, "instruction", line);
        record.input = optional(value, "context", line);
        record.response = required(value, "response", line);
        record.category = required(value, "category", line);
        break;
      case InstructionFormat::kGsm8k:
        record.instruction = required(value, "question", line);
        record.response = required(value, "answer", line);
        if (!gsm8k_reference_number(record.response)) {
          fail(line, "\"answer\" does not end in \"#### <number>\"");
        }
        break;
      case InstructionFormat::kAlpaca:
        record.instruction = required(value, "instruction", line);
        record.input = optional(value, "input", line);
        record.response = required(value, "output", line);
        break;
    }
    return record;
  }

 private:
  std::string required(const nlohmann::json& object, const char* key, std::int64_t line) const {
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) {
      fail(line, std::string("the record has no \"") + key + "\"");
    }
    std::string value = text_of(*found, key, line);
    if (value.find_first_not_of(" \t\r\n") == std::string::npos) {
      fail(line, std::string("\"") + key + "\" is empty");
    }
    return value;
  }

  std::string optional(const nlohmann::json& object, const char* key, std::int64_t line) const {
    const auto found = object.find(key);
    if (found == object.end() || found->is_null()) return {};
    return text_of(*found, key, line);
  }

  std::string text_of(const nlohmann::json& value, const char* key, std::int64_t line) const {
    if (!value.is_string()) {
      fail(line, std::string("\"") + key + "\" must be a string, found " + value.type_name());
    }
    return value.get<std::string>();
  }

  std::filesystem::path path_;
  InstructionFormat format_;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path.string() + ": cannot be read");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

InstructionFormat parse_instruction_format(const std::string& name) {
  if (name == "dolly") return InstructionFormat::kDolly;
  if (name == "gsm8k") return InstructionFormat::kGsm8k;
  if (name == "alpaca" || name == "codealpaca") return InstructionFormat::kAlpaca;
  throw ConfigError(
      "dataset format must be \"dolly\", \"gsm8k\", \"alpaca\" or \"codealpaca\", got \"" + name +
      "\"");
}

std::vector<InstructionRecord> read_instruction_records(const std::filesystem::path& path,
                                                        InstructionFormat format) {
  const std::string text = read_file(path);
  const RecordReader reader(path, format);
  std::vector<InstructionRecord> records;
  // A UTF-8 byte order mark, as some editors write, is not content.
  const std::size_t bom = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  const std::size_t first = text.find_first_not_of(" \t\r\n", bom);
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json array;
    try {
      array = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {
      reader.fail(line_of(text, error.byte > 0 ? error.byte - 1 : 0),
                  std::string("not valid JSON (") + error.what() + ")");
    }
    const std::vector<std::size_t> offsets = array_element_offsets(text, first);
    for (std::size_t i = 0; i < array.size(); ++i) {
      records.push_back(reader.read(array[i], line_of(text, i < offsets.size() ? offsets[i] : 0)));
    }
  } else {
    std::int64_t line = 0;
    std::size_t begin = 0;
    while (begin < text.size()) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      ++line;
      const std::string_view row(text.data() + begin, end - begin);
      begin = end + 1;
      if (row.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(row.begin(), row.end());
      } catch (const nlohmann::json::parse_error& error) {
        reader.fail(line, std::string("not a JSON object (") + error.what() + ")");
      }
      records.push_back(reader.read(value, line));
    }
  }
  if (records.empty()) throw FormatError(path.string() + ": holds no records");
  return records;
}

}  // namespace lorafed::text
