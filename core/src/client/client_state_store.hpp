#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>

#include "lorafed/named_tensors.hpp"

namespace lorafed {

// What each virtual client of a process carries between instructions
// (ModelBackend::client_state) while its backend does not exist ([client]
// models = "on_demand"). Holds up to `memory_budget_bytes` of tensors in
// memory; past that, the states used least recently go to safetensors files
// in `spill_dir` and are read back when their client next works. The
// folder is created when first needed and removed with the store.
// Thread-safe: the workers of a client host share one store.
class ClientStateStore {
 public:
  struct Stats {
    std::size_t clients_in_memory = 0;
    std::size_t clients_on_disk = 0;
    std::size_t bytes_in_memory = 0;
    std::int64_t spills = 0;   // states written to disk
    std::int64_t reloads = 0;  // states read back
  };

  ClientStateStore(std::size_t memory_budget_bytes, std::filesystem::path spill_dir);
  ~ClientStateStore();
  ClientStateStore(const ClientStateStore&) = delete;
  ClientStateStore& operator=(const ClientStateStore&) = delete;

  // The client's state, nullopt when it has none. A spilled state stays on
  // disk until put() replaces it, so a failed instruction loses nothing.
  std::optional<NamedTensors> get(std::int64_t client);
  // Replaces the client's state; an empty one erases it.
  void put(std::int64_t client, NamedTensors state);

  Stats stats() const;

 private:
  struct Entry {
    NamedTensors tensors;  // empty while on disk
    std::size_t bytes = 0;
    bool on_disk = false;
    std::list<std::int64_t>::iterator recency;  // in memory only
  };

  std::filesystem::path file(std::int64_t client) const;
  void erase_locked(std::int64_t client);
  void spill_until_within_budget();

  const std::size_t budget_;
  const std::filesystem::path dir_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, Entry> entries_;
  std::list<std::int64_t> recency_;  // in-memory clients, least recently used first
  std::size_t bytes_in_memory_ = 0;
  Stats counts_;
  bool dir_created_ = false;
};

}  // namespace lorafed
