#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lorafed/model_spec.hpp"
#include "lorafed/strategy.hpp"
#include "src/wire/messages.hpp"

namespace lorafed {

// Who takes part in a federation, as the server sees it: registration with
// its admission checks, and liveness as the broker reports it. The one place
// the server decides whether a client may join (docs/deployment.md, "Threat
// model"); which connection may speak for a client id is the broker's.
class ClientRoster {
 public:
  // Examples a client may claim: weights stay exact in double arithmetic.
  static constexpr std::int64_t kMaxExamples = std::int64_t{1} << 40;

  // `configured_ranks`: each client id the federation expects, with the LoRA
  // rank its configuration gives it. Nothing else is admitted.
  ClientRoster(ModelSpec spec, std::map<std::string, std::int64_t> configured_ranks);

  // Admits a Register from `id`, or returns why not (sent back to the client
  // as a refusal). Every number in it is checked before it is used: the rank
  // against the configuration and the model's layers, the example count
  // against kMaxExamples.
  std::optional<std::string> admit(const std::string& id, const wire::RegisterBody& body);
  // The broker reported `id` lost; false when it was not registered.
  bool mark_lost(const std::string& id);

  bool contains(const std::string& id) const { return clients_.contains(id); }
  bool alive(const std::string& id) const;
  const ClientInfo& info(const std::string& id) const;
  std::vector<ClientInfo> infos(const std::vector<std::string>& ids) const;
  // The live clients, sorted by id. Kept between calls and remade only after
  // an admission or a loss: a round asks for them twice, and listing 10,000
  // clients took 1 to 2 ms of a 90 ms round (docs/benchmarks.md).
  const std::vector<std::string>& alive_ids() const;
  const std::vector<ClientInfo>& alive_infos() const;
  // How many are alive, without listing them (the server asks after every
  // registration while 10,000 clients register).
  std::size_t alive_count() const { return alive_count_; }
  // How many times a live client was reported lost: whoever watches for
  // losses looks again only when this changed.
  std::uint64_t losses() const { return losses_; }
  std::vector<std::string> ids() const;  // every registered client, sorted
  std::size_t size() const { return clients_.size(); }
  // Clients admitted since the last call: a round's collector sends these
  // their instruction again (they restarted, or the broker did).
  std::set<std::string> take_admitted();

 private:
  struct Client {
    ClientInfo info;
    bool alive = true;
  };
  ModelSpec spec_;
  std::int64_t largest_rank_;
  std::map<std::string, std::int64_t> configured_ranks_;
  std::map<std::string, Client> clients_;
  std::set<std::string> admitted_;
  std::size_t alive_count_ = 0;
  std::uint64_t losses_ = 0;
  void refresh_alive() const;
  mutable bool alive_stale_ = true;
  mutable std::vector<std::string> alive_ids_;
  mutable std::vector<ClientInfo> alive_infos_;
};

}  // namespace lorafed
