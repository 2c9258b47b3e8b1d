#include "sentencepiece_model.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <unordered_set>

#include "lorafed/error.hpp"
#include "utf8.hpp"

namespace lorafed::text {
namespace {

// Field numbers of sentencepiece_model.proto.
namespace field {
constexpr std::uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3,
                        kModelDenormalizerSpec = 5;
constexpr std::uint32_t kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr std::uint32_t kTrainerModelType = 3, kTrainerVocabSize = 4,
                        kTrainerWhitespaceAsSuffix = 24, kTrainerByteFallback = 35,
                        kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42,
                        kTrainerPadId = 43, kTrainerBosPiece = 46, kTrainerEosPiece = 47;
constexpr std::uint32_t kNormalizerName = 1, kNormalizerCharsmap = 2, kNormalizerDummyPrefix = 3,
                        kNormalizerRemoveSpaces = 4, kNormalizerEscapeSpaces = 5,
                        kNormalizerRuleTsv = 6;
}  // namespace field
constexpr std::uint64_t kUnigram = 1, kBpe = 2;

enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  std::uint32_t number = 0;
  WireType type = kVarint;
  std::uint64_t varint = 0;  // kVarint
  std::uint32_t fixed32 = 0;
  std::string_view bytes;  // kLengthDelimited
};

// Protobuf's wire format, one field at a time; every length is checked
// against what is left before it is used.
class WireReader {
 public:
  WireReader(std::string_view bytes, const std::filesystem::path& path, std::string message)
      : bytes_(bytes), path_(path), message_(std::move(message)) {}

  bool done() const { return offset_ == bytes_.size(); }

  Field next() {
    const std::uint64_t key = varint();
    Field result;
    if ((key >> 3U) == 0 || (key >> 3U) > 0x1FFFFFFFU) fail("a field number of 0 or past 2^29");
    result.number = static_cast<std::uint32_t>(key >> 3U);
    switch (key & 7U) {
      case kVarint:
        result.type = kVarint;
        result.varint = varint();
        break;
      case kFixed64:
        result.type = kFixed64;
        take(8);
        break;
      case kLengthDelimited: {
        result.type = kLengthDelimited;
        const std::uint64_t length = varint();
        if (length > bytes_.size() - offset_) fail("a length past the end of the file");
        result.bytes = take(static_cast<std::size_t>(length));
        break;
      }
      case kFixed32: {
        result.type = kFixed32;
        const std::string_view raw = take(4);
        for (std::size_t i = 0; i < 4; ++i) {
          result.fixed32 |= static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i]))
                            << (8U * i);
        }
        break;
      }
      default:
        fail("wire type " + std::to_string(key & 7U) + " (groups are not in the format)");
    }
    return result;
  }

  // A field of the wrong wire type for its number is not the format.
  void expect(const Field& found, WireType type, const char* name) const {
    if (found.type != type) fail(std::string("field ") + name + " has the wrong wire type");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(path_.string() + ": not a SentencePiece model: " + message_ + ": " + what);
  }

 private:
  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (offset_ == bytes_.size()) fail("a number cut off by the end of the file");
      const auto byte = static_cast<unsigned char>(bytes_[offset_++]);
      value |= static_cast<std::uint64_t>(byte & 0x7FU) << shift;
      if ((byte & 0x80U) == 0) return value;
    }
    fail("a number of more than ten bytes");
  }

  std::string_view take(std::size_t length) {
    if (length > bytes_.size() - offset_) fail("a value cut off by the end of the file");
    const std::string_view taken = bytes_.substr(offset_, length);
    offset_ += length;
    return taken;
  }

  std::string_view bytes_;
  std::size_t offset_ = 0;
  const std::filesystem::path& path_;
  std::string message_;
};

std::string read_bytes(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw FormatError(path.string() + ": no such SentencePiece model file");
  }
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error || size > kMaxSentencePieceFileBytes) {
    throw FormatError(path.string() + ": a SentencePiece model of " + std::to_string(size) +
                      " bytes is larger than lorafed reads (" +
                      std::to_string(kMaxSentencePieceFileBytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    throw FormatError(path.string() + ": cannot be read");
  }
  return bytes;
}

SentencePiece read_piece(const Field& message, const std::filesystem::path& path, std::size_t id) {
  WireReader reader(message.bytes, path, "piece " + std::to_string(id));
  SentencePiece piece;
  while (!reader.done()) {
    const Field found = reader.next();
    if (found.number == field::kPieceText) {
      reader.expect(found, kLengthDelimited, "piece");
      piece.text = std::string(found.bytes);
    } else if (found.number == field::kPieceScore) {
      reader.expect(found, kFixed32, "score");
      piece.score = std::bit_cast<float>(found.fixed32);
    } else if (found.number == field::kPieceType) {
      reader.expect(found, kVarint, "type");
      if (found.varint < 1 || found.varint > 6) {
        reader.fail("type " + std::to_string(found.varint) + " is not a piece type");
      }
      piece.type = static_cast<PieceType>(found.varint);
    }
  }
  if (piece.text.empty()) reader.fail("an empty piece");
  if (piece.text.size() > kMaxSentencePieceBytes) {
    reader.fail("a piece of " + std::to_string(piece.text.size()) + " bytes (at most " +
                std::to_string(kMaxSentencePieceBytes) + ")");
  }
  if (first_invalid_utf8(piece.text)) reader.fail("the piece is not UTF-8");
  if (!std::isfinite(piece.score)) reader.fail("a score that is not a finite number");
  if (piece.type == PieceType::kByte && !byte_of_piece(piece.text)) {
    reader.fail("byte piece \"" + piece.text + "\" is not written <0xXX>");
  }
  if (piece.type == PieceType::kUnused) {
    reader.fail("\"" + piece.text + "\" is an unused piece, which lorafed does not read");
  }
  return piece;
}

void read_trainer_spec(const Field& message, const std::filesystem::path& path,
                       SentencePieceModel& model) {
  WireReader reader(message.bytes, path, "trainer_spec");
  while (!reader.done()) {
    const Field found = reader.next();
    switch (found.number) {
      case field::kTrainerModelType:
        reader.expect(found, kVarint, "model_type");
        if (found.varint == kUnigram) {
          reader.fail(
              "a unigram model; lorafed reads SentencePiece BPE models (Llama-2, "
              "TinyLlama, Mistral)");
        }
        if (found.varint != kBpe) {
          reader.fail("model_type " + std::to_string(found.varint) +
                      "; lorafed reads SentencePiece BPE models");
        }
        break;
      case field::kTrainerWhitespaceAsSuffix:
        reader.expect(found, kVarint, "treat_whitespace_as_suffix");
        if (found.varint != 0) reader.fail("whitespace as a suffix, which lorafed does not read");
        break;
      case field::kTrainerByteFallback:
        reader.expect(found, kVarint, "byte_fallback");
        model.byte_fallback = found.varint != 0;
        break;
      case field::kTrainerBosPiece:
        reader.expect(found, kLengthDelimited, "bos_piece");
        model.bos_piece = std::string(found.bytes);
        break;
      case field::kTrainerEosPiece:
        reader.expect(found, kLengthDelimited, "eos_piece");
        model.eos_piece = std::string(found.bytes);
        break;
      default:
        break;  // training settings
    }
  }
}

void read_normalizer_spec(const Field& message, const std::filesystem::path& path, const char* name,
                          SentencePieceModel* model) {
  WireReader reader(message.bytes, path, name);
  std::string normalizer = "(unnamed)";
  bool rules = false;
  while (!reader.done()) {
    const Field found = reader.next();
    switch (found.number) {
      case field::kNormalizerName:
        reader.expect(found, kLengthDelimited, "name");
        normalizer = std::string(found.bytes);
        break;
      case field::kNormalizerCharsmap:
      case field::kNormalizerRuleTsv:
        reader.expect(found, kLengthDelimited, "precompiled_charsmap");
        rules = rules || !found.bytes.empty();
        break;
      case field::kNormalizerDummyPrefix:
      case field::kNormalizerRemoveSpaces:
      case field::kNormalizerEscapeSpaces: {
        reader.expect(found, kVarint, "a normalizer flag");
        if (model == nullptr) break;
        const bool value = found.varint != 0;
        if (found.number == field::kNormalizerDummyPrefix) model->add_dummy_prefix = value;
        if (found.number == field::kNormalizerRemoveSpaces) {
          model->remove_extra_whitespaces = value;
        }
        if (found.number == field::kNormalizerEscapeSpaces) model->escape_whitespaces = value;
        break;
      }
      default:
        break;
    }
  }
  if (rules) {
    reader.fail("normalizer \"" + normalizer +
                "\" rewrites characters by its own table, which lorafed does not apply; it reads "
                "models with the identity normalizer (Llama-2, TinyLlama, Mistral)");
  }
}

void check_pieces(const SentencePieceModel& model, const std::filesystem::path& path) {
  const auto fail = [&](const std::string& what) {
    throw FormatError(path.string() + ": not a SentencePiece model lorafed reads: " + what);
  };
  if (model.pieces.empty()) fail("no pieces");
  std::unordered_set<std::string_view> seen;
  std::size_t unknown = 0;
  std::size_t bytes = 0;
  for (const SentencePiece& piece : model.pieces) {
    if (!seen.insert(piece.text).second) fail("piece \"" + piece.text + "\" is there twice");
    unknown += piece.type == PieceType::kUnknown ? 1 : 0;
    bytes += piece.type == PieceType::kByte ? 1 : 0;
  }
  if (unknown != 1) fail(std::to_string(unknown) + " unknown pieces (one is required)");
  if (model.byte_fallback && bytes != 256) {
    fail("byte fallback with " + std::to_string(bytes) + " byte pieces (256 are required)");
  }
}

// Writing: the wire format's three encodings that the model needs.
void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80U) {
    out += static_cast<char>((value & 0x7FU) | 0x80U);
    value >>= 7U;
  }
  out += static_cast<char>(value);
}

void put_key(std::string& out, std::uint32_t number, WireType type) {
  put_varint(out, (static_cast<std::uint64_t>(number) << 3U) | type);
}

void put_bytes(std::string& out, std::uint32_t number, std::string_view bytes) {
  put_key(out, number, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// int32 fields write negative numbers as ten-byte two's complement varints.
void put_int(std::string& out, std::uint32_t number, std::int64_t value) {
  put_key(out, number, kVarint);
  put_varint(out, static_cast<std::uint64_t>(value));
}

std::int64_t id_of(const SentencePieceModel& model, PieceType type, std::string_view text) {
  for (std::size_t id = 0; id < model.pieces.size(); ++id) {
    const SentencePiece& piece = model.pieces[id];
    if (piece.type == type && (text.empty() || piece.text == text)) {
      return static_cast<std::int64_t>(id);
    }
  }
  return -1;
}

}  // namespace

std::optional<unsigned char> byte_of_piece(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return std::nullopt;
  unsigned value = 0;
  for (const char digit : piece.substr(3, 2)) {
    value <<= 4U;
    if (digit >= '0' && digit <= '9') {
      value |= static_cast<unsigned>(digit - '0');
    } else if (digit >= 'A' && digit <= 'F') {
      value |= static_cast<unsigned>(digit - 'A' + 10);
    } else {
      return std::nullopt;
    }
  }
  return static_cast<unsigned char>(value);
}

std::string piece_of_byte(unsigned char byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("<0x") + kHex[byte >> 4U] + kHex[byte & 0xFU] + ">";
}

SentencePieceModel read_sentencepiece_model(const std::filesystem::path& path) {
  const std::string bytes = read_bytes(path);
  WireReader reader(bytes, path, "the model");
  SentencePieceModel model;
  while (!reader.done()) {
    const Field found = reader.next();
    if (found.number == field::kModelPieces) {
      reader.expect(found, kLengthDelimited, "pieces");
      if (model.pieces.size() == kMaxSentencePieces) {
        reader.fail("more than " + std::to_string(kMaxSentencePieces) + " pieces");
      }
      model.pieces.push_back(read_piece(found, path, model.pieces.size()));
    } else if (found.number == field::kModelTrainerSpec) {
      reader.expect(found, kLengthDelimited, "trainer_spec");
      read_trainer_spec(found, path, model);
    } else if (found.number == field::kModelNormalizerSpec) {
      reader.expect(found, kLengthDelimited, "normalizer_spec");
      read_normalizer_spec(found, path, "normalizer_spec", &model);
    } else if (found.number == field::kModelDenormalizerSpec) {
      reader.expect(found, kLengthDelimited, "denormalizer_spec");
      read_normalizer_spec(found, path, "denormalizer_spec", nullptr);
    }
  }
  check_pieces(model, path);
  return model;
}

std::string serialize_sentencepiece_model(const SentencePieceModel& model) {
  std::string out;
  for (const SentencePiece& piece : model.pieces) {
    std::string message;
    put_bytes(message, field::kPieceText, piece.text);
    put_key(message, field::kPieceScore, kFixed32);
    const auto score = std::bit_cast<std::uint32_t>(piece.score);
    for (unsigned i = 0; i < 4; ++i) message += static_cast<char>((score >> (8U * i)) & 0xFFU);
    put_int(message, field::kPieceType, static_cast<std::int64_t>(piece.type));
    put_bytes(out, field::kModelPieces, message);
  }
  std::string trainer;
  put_int(trainer, field::kTrainerModelType, kBpe);
  put_int(trainer, field::kTrainerVocabSize, static_cast<std::int64_t>(model.pieces.size()));
  put_int(trainer, field::kTrainerByteFallback, model.byte_fallback ? 1 : 0);
  put_int(trainer, field::kTrainerUnkId, id_of(model, PieceType::kUnknown, ""));
  put_int(trainer, field::kTrainerBosId, id_of(model, PieceType::kControl, model.bos_piece));
  put_int(trainer, field::kTrainerEosId, id_of(model, PieceType::kControl, model.eos_piece));
  put_int(trainer, field::kTrainerPadId, -1);
  put_bytes(trainer, field::kTrainerBosPiece, model.bos_piece);
  put_bytes(trainer, field::kTrainerEosPiece, model.eos_piece);
  put_bytes(out, field::kModelTrainerSpec, trainer);
  std::string normalizer;
  put_bytes(normalizer, field::kNormalizerName, "identity");
  put_int(normalizer, field::kNormalizerDummyPrefix, model.add_dummy_prefix ? 1 : 0);
  put_int(normalizer, field::kNormalizerRemoveSpaces, model.remove_extra_whitespaces ? 1 : 0);
  put_int(normalizer, field::kNormalizerEscapeSpaces, model.escape_whitespaces ? 1 : 0);
  put_bytes(out, field::kModelNormalizerSpec, normalizer);
  return out;
}

}  // namespace lorafed::text
